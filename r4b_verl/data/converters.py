"""One converter per dataset family: a source row -> an :class:`Example` (prompt, answer, images).

A converter reads the field names of the family's public release (listed in ``FAMILIES`` and the
README), case-insensitively, and raises :class:`BadRow` with the reason when a row cannot make a
verl row (no answer, an answer the reward cannot read, an image that does not decode, ...).
Each family names the ``data_source`` its rows get; the reward router (``r4b_verl/reward/router.py``,
``DEFAULT_ROUTES``) sends those names to ``math`` or, for multiple-choice rows, whose names end in
``_mc``, to ``choice``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from r4b_verl.reward.boxed import last_boxed

from .images import PLACEHOLDER, ImageError, decode_problem, encoded_bytes
from .prompts import CHOICE_INSTRUCTION, LETTERS, choice_prompt, math_prompt

CHOICE_SUFFIX = "_mc"  # data_source suffix of multiple-choice rows: routed to the choice reward
MAX_OPTIONS_CHARS = 20_000  # an options string longer than this is not parsed
MAX_FIELD_CHARS = 200_000  # a question or answer longer than this is refused


class BadRow(ValueError):
    """A source row that cannot become a verl row: ``reason`` (counted in the summary) and a detail."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Example:
    prompt: str  # the user message content, <image> placeholders included
    answer: str  # reward_model.ground_truth, as the routed reward reads it
    kind: str  # "math" | "choice"
    question: str  # the source question (extra_info.question; the de-duplication key)
    images: list[bytes] = field(default_factory=list)


class Fields:
    """A source row read case-insensitively; ``text`` returns the first non-empty string field."""

    def __init__(self, row: dict):
        self.row = {str(k).lower(): v for k, v in row.items()}

    def get(self, *names):
        for name in names:
            value = self.row.get(name)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                return value
        return None

    def text(self, *names, what: str = "question") -> str:
        value = self.get(*names)
        if value is None:
            raise BadRow(f"no {what}", f"field {' / '.join(names)}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadRow(f"{what} is not text", type(value).__name__)
        value = str(value).strip()
        if len(value) > MAX_FIELD_CHARS:
            raise BadRow(f"{what} too long", f"over {MAX_FIELD_CHARS} characters")
        return value


def _images(values: list, base_dir) -> list[bytes]:
    out = []
    for k, value in enumerate(values):
        try:
            data = encoded_bytes(value, base_dir)
        except ImageError as exc:
            raise BadRow("image unreadable", f"image {k}: {exc}") from None
        problem = decode_problem(data)
        if problem:
            raise BadRow("image does not decode", f"image {k}: {problem}")
        out.append(data)
    return out


def _image_values(f: Fields) -> list:
    value = f.get("images", "decoded_image", "image")
    if value is None:
        return []
    if type(value).__name__ == "ndarray":
        value = list(value)
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _with_placeholders(text: str, n_images: int) -> str:
    """``text`` with one ``<image>`` per image: prepended when it has none, refused when counts differ."""
    found = text.count(PLACEHOLDER)
    if found == 0 and n_images:
        return PLACEHOLDER * n_images + "\n" + text
    if found != n_images:
        raise BadRow("placeholders != images", f"{found} {PLACEHOLDER} for {n_images} images")
    return text


def _options(value) -> list[str]:
    if type(value).__name__ == "ndarray":
        value = list(value)
    if isinstance(value, str):
        if len(value) > MAX_OPTIONS_CHARS:
            raise BadRow("options string too long")
        try:
            value = ast.literal_eval(value)  # MMMU stores "['a', 'b']"; literal_eval evaluates no code
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise BadRow("options string is not a list") from None
    if not isinstance(value, (list, tuple)):
        raise BadRow("options are not a list", type(value).__name__)
    options = [str(v).strip() for v in value]
    if not 2 <= len(options) <= len(LETTERS):
        raise BadRow("wrong number of options", f"{len(options)} (need 2 to {len(LETTERS)})")
    return options


def _letter(answer, options: list[str]) -> str:
    """The answer's letter: an index, a letter (``B``, ``(B)``) or the text of one option."""
    if isinstance(answer, bool):
        raise BadRow("answer is a boolean")
    if isinstance(answer, int) or (isinstance(answer, float) and answer.is_integer()):
        if 0 <= int(answer) < len(options):
            return LETTERS[int(answer)]
        raise BadRow("answer not among the options", f"index {answer} of {len(options)} options")
    text = str(answer).strip()
    letter = re.fullmatch(r"\(?([A-Ja-j])\)?\.?", text)
    if letter and LETTERS.index(letter.group(1).upper()) < len(options):
        return letter.group(1).upper()
    matches = [i for i, option in enumerate(options) if option == text]
    if len(matches) == 1:
        return LETTERS[matches[0]]
    raise BadRow("answer not among the options" if not matches else "answer matches several options", repr(text[:40]))


# --- text math ------------------------------------------------------------------------------------

_GSM8K_ANSWER = re.compile(r"####\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*$")


def gsm8k(row: dict, base_dir=None) -> Example:
    f = Fields(row)
    question = f.text("question")
    solution = f.text("answer", what="answer")
    match = _GSM8K_ANSWER.search(solution)
    if not match:
        raise BadRow("answer has no final '#### <number>'")
    answer = match.group(1).replace(",", "")
    return Example(math_prompt(question), answer, "math", question)


def math(row: dict, base_dir=None) -> Example:
    """MATH / MATH-500: ``answer`` when given (MATH-500), else the last ``\\boxed{}`` of ``solution``."""
    f = Fields(row)
    question = f.text("problem", "question")
    answer = f.get("answer")
    if answer is None:
        solution = f.text("solution", what="solution")
        answer = last_boxed(solution)
        if answer is None or not answer.strip():
            raise BadRow("solution has no \\boxed{} answer")
    return Example(math_prompt(question), str(answer).strip(), "math", question)


# DAPO-Math-17k's prompt wraps the problem in an "Answer: $Answer" instruction that contradicts \boxed{}.
_DAPO_HEAD = re.compile(r"^\s*Solve the following math problem step by step\..*?where \$Answer is the answer to "
                        r"the problem\.\s*", re.S)
_DAPO_TAIL = re.compile(r"\s*Remember to put your answer on its own line after \"Answer:\"\.?\s*$")


def dapo_math(row: dict, base_dir=None) -> Example:
    f = Fields(row)
    prompt = f.get("prompt")
    if isinstance(prompt, (list, tuple)) or type(prompt).__name__ == "ndarray":
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        prompt = users[-1] if users else None
    question = prompt if isinstance(prompt, str) and prompt.strip() else f.text("problem", "question")
    question = _DAPO_TAIL.sub("", _DAPO_HEAD.sub("", question)).strip()
    if not question:
        raise BadRow("empty question")
    reward_model = f.get("reward_model")
    answer = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    if answer is None or not str(answer).strip():
        answer = f.text("answer", "solution", what="answer")
    return Example(math_prompt(question), str(answer).strip(), "math", question)


def aime(row: dict, base_dir=None) -> Example:
    f = Fields(row)
    question = f.text("problem", "question")
    answer = f.text("answer", what="answer")
    if not re.fullmatch(r"-?\d+(?:\.0+)?", answer):
        raise BadRow("answer is not an integer", repr(answer[:40]))
    return Example(math_prompt(question), str(int(answer.split(".")[0])), "math", question)


# --- multimodal -----------------------------------------------------------------------------------


def geometry3k(row: dict, base_dir=None) -> Example:
    f = Fields(row)
    question = f.text("problem", "question")
    images = _images(_image_values(f), base_dir)
    answer = f.text("answer", what="answer")
    return Example(math_prompt(_with_placeholders(question, len(images))), answer, "math", question, images)


def visual_math(row: dict, base_dir=None) -> Example:
    """MathVista / MathVerse: multiple choice (``choices`` list, or a letter answer of a ``*choice*``
    ``question_type`` with the options in the question text) or free form (a math answer)."""
    f = Fields(row)
    question = f.text("question", "problem")
    images = _images(_image_values(f), base_dir)  # MathVista: decoded_image before its path in image
    answer = f.get("answer")
    if answer is None:
        raise BadRow("no answer", "field answer")
    choices = f.get("choices", "options")
    qtype = str(f.get("question_type") or "").lower().replace("-", "_")
    listed = choices is not None and not (isinstance(choices, (list, tuple)) and not choices)  # [] = free form
    if listed and "free" not in qtype:
        options = _options(choices)
        prompt = choice_prompt(_with_placeholders(question, len(images)), options)
        return Example(prompt, _letter(answer, options), "choice", question, images)
    if "choice" in qtype:
        letter = re.fullmatch(r"\(?([A-Ja-j])\)?\.?", str(answer).strip())
        if not letter:
            raise BadRow("multiple-choice answer is not a letter", f"{str(answer)[:40]!r} and the row has no choices")
        prompt = f"{_with_placeholders(question, len(images)).strip()}\n\n{CHOICE_INSTRUCTION}"
        return Example(prompt, letter.group(1).upper(), "choice", question, images)
    answer = str(answer).strip()
    if not answer:
        raise BadRow("empty answer")
    return Example(math_prompt(_with_placeholders(question, len(images))), answer, "math", question, images)


_NUMBERED_IMAGE = re.compile(r"<image (\d+)>")  # MMMU's placeholders, numbered by the image_N fields


def multiple_choice(row: dict, base_dir=None) -> Example:
    """ScienceQA / MMMU style: ``question``, ``choices`` or ``options``, ``answer`` (index, letter or
    option text), an optional ``hint`` / ``context``, images in ``image`` / ``images`` / ``image_1..``."""
    f = Fields(row)
    question = f.text("question")
    hint = f.get("hint", "context")
    choices = f.get("choices", "options")
    if choices is None:
        raise BadRow("no choices", "field choices / options")
    options = _options(choices)
    answer = f.get("answer")
    if answer is None:
        raise BadRow("no answer", "field answer")
    letter = _letter(answer, options)
    body = f"Context: {str(hint).strip()}\n\n{question}" if isinstance(hint, str) and hint.strip() else question
    prompt = choice_prompt(body, options)
    numbered = {int(k[len("image_"):]): v for k, v in f.row.items()
                if re.fullmatch(r"image_\d+", k) and v is not None}
    if numbered:
        order = [int(n) for n in _NUMBERED_IMAGE.findall(prompt)]
        missing = sorted(set(order) - set(numbered))
        if missing:
            raise BadRow("placeholders != images", f"<image {missing[0]}> has no image_{missing[0]}")
        prompt = _NUMBERED_IMAGE.sub(PLACEHOLDER, prompt)
        unreferenced = [numbered[n] for n in sorted(numbered) if n not in order]
        values = unreferenced + [numbered[n] for n in order]
        prompt = PLACEHOLDER * len(unreferenced) + ("\n" if unreferenced else "") + prompt
        images = _images(values, base_dir)
    else:
        images = _images(_image_values(f), base_dir)
        prompt = _with_placeholders(prompt, len(images))
    return Example(prompt, letter, "choice", question, images)


@dataclass(frozen=True)
class Family:
    convert: Callable[..., Example]
    data_source: str  # multiple-choice rows get data_source + CHOICE_SUFFIX
    ability: str
    fields: str  # the source fields read (README)
    images: bool = False  # rows carry an images column (possibly empty lists)


FAMILIES: dict[str, Family] = {
    "gsm8k": Family(gsm8k, "openai/gsm8k", "math", "question, answer ('... #### 72')"),
    "math": Family(math, "hendrycks_math", "math", "problem, solution (last \\boxed{}) or answer"),
    "math500": Family(math, "HuggingFaceH4/MATH-500", "math", "problem, answer (or solution)"),
    "dapo-math-17k": Family(dapo_math, "dapo_math_17k", "math",
                            "prompt (messages or text; DAPO's 'Answer:' wrapper removed), reward_model.ground_truth "
                            "or solution / answer"),
    "aime": Family(aime, "aime", "math", "problem, answer (an integer)"),
    "geometry3k": Family(geometry3k, "hiyouga/geometry3k", "math",
                         "problem (with <image>), images (or image), answer", True),
    "mathvista": Family(visual_math, "mathvista", "math",
                        "question, decoded_image / image, choices + answer text, or free-form answer", True),
    "mathverse": Family(visual_math, "mathverse", "math",
                        "question (options inline), image, answer (a letter for question_type multi-choice)", True),
    "scienceqa": Family(multiple_choice, "scienceqa", "science",
                        "question, choices, answer (index), hint, image", True),
    "mmmu": Family(multiple_choice, "mmmu", "multimodal",
                   "question (<image N>), options (a list or its string), answer (letter), image_1..image_7", True),
}


def data_source_for(family: Family, example: Example, base: str | None = None) -> str:
    name = base or family.data_source
    if example.kind == "choice" and not name.endswith(CHOICE_SUFFIX):
        name += CHOICE_SUFFIX
    return name
