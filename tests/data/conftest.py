"""Shared by tests/data: the source-file writer and one tiny offline tokenizer per session."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: make sources.py importable


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    """The demo's byte-level tokenizer with its ChatML template, saved (AutoTokenizer loads it by path)."""
    from r4b_verl.demo.tiny import build_tokenizer

    path = tmp_path_factory.mktemp("tokenizer")
    tok = build_tokenizer(path)
    return tok, path
