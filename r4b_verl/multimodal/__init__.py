"""Images through verl's RL data path without torchvision, and the start-up checks that make a
multimodal run fail loudly where verl would go on silently (README.md in this folder)."""
