"""Shared by tests/anneal: one tiny offline tokenizer per session, copies with other chat templates."""

import copy

import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from r4b_verl.demo.tiny import build_tokenizer

    return build_tokenizer()


@pytest.fixture
def tokenizer_with(tiny_tokenizer):
    """``tokenizer_with(template)``: a copy of the tiny tokenizer rendering with ``template``."""

    def make(template):
        tok = copy.deepcopy(tiny_tokenizer)
        tok.chat_template = template
        return tok

    return make
