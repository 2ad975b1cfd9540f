"""A generated corpus of answer styles: (gold as a data set writes it, answer part as a model writes it).

Written from the ways answers show up in math RL data, not from this engine's rules:
units, percent (sign, word, separate sign), thousands and decimal separators, intervals (with
fractions written as decimals), inequalities for intervals, sets, tuples, matrices, several boxed
or "and"-joined answers, and text around the answer (markdown, "final answer is", equations).
Each family mixes right and wrong answers; the corpus carries no labels: the tests and
``benchmarks/fuzz_rewards.py --corpus`` compare the reward with math-verify itself on every case.
"""

from __future__ import annotations

import random
from fractions import Fraction

AROUND = [
    "%s",
    "The answer is %s.",
    "The answer is $%s$.",
    "The final answer is $%s$. I hope it is correct.",
    "Therefore, the final answer is $\\boxed{%s}$.",
    "So the answer is \\boxed{%s}",
    "**Answer:** %s",
    "Answer: $%s$",
    "Final answer: \\(%s\\)",
    "We conclude that\n\\[\n%s\n\\]",
    "$$%s$$",
    "Thus $x = %s$.",
    "**Final Answer**\n\\[ \\boxed{%s} \\]",
    "Putting it together, we get %s as the result.",
    "Checking: $2 + 3 = 5$, so the answer is $%s$",
    "The answer is $\\boxed{7}$... wait, that is wrong. The answer is $\\boxed{%s}$.",
]


def _dec(value: Fraction, digits: int) -> str:
    text = f"{float(value):.{digits}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _frac(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def units(rng: random.Random):
    k = rng.randint(2, 999)
    gold = rng.choice([f"{k}", f"{k}\\text{{ cm}}", f"{k} \\mbox{{ cm}}", f"{k}^\\circ", f"\\${k}"])
    v = k if rng.random() < 0.7 else k + rng.choice([-1, 1, 10])
    forms = [f"{v} cm", f"${v}$ cm", f"{v}\\text{{ cm}}", f"{v} \\mathrm{{cm}}", f"{v}\\,\\text{{cm}}",
             f"{v} centimeters", f"{v}^\\circ", f"{v}^{{\\circ}}", f"{v} degrees", f"\\${v}", f"${v}$ dollars",
             f"{v}\\text{{ dollars}}", f"{v}\\ \\text{{m}}^2", f"{v} \\text{{ square units}}"]
    return gold, rng.choice(forms)


def percent(rng: random.Random):
    p = rng.randint(1, 99)
    gold = rng.choice([f"{p}\\%", f"{p}", f"0.{p:02d}", f"{p}%", f"{p}\\text{{ percent}}"])
    v = p if rng.random() < 0.7 else rng.choice([p + 1, p * 10, 100 - p])
    forms = [f"{v} percent", f"{v} pct", f"{v} %", f"{v}%", f"${v}$ %", f"${v}$\\%", f"${v}\\%$", f"{v}\\%",
             f"\\boxed{{{v}\\%}}", f"0.{v:02d}", f"{v} percentage", f"${v}$ percent", f"{v}\\text{{ percent}}",
             f"\\frac{{{v}}}{{100}}"]
    return gold, rng.choice(forms)


def separators(rng: random.Random):
    if rng.random() < 0.5:
        n = rng.randint(1000, 99_999_999)
        gold = rng.choice([str(n), f"{n:,}", f"{n:,}".replace(",", "{,}")])
        v = n if rng.random() < 0.7 else n + rng.choice([-1, 1000])
        forms = [f"{v:,}", f"{v:,}".replace(",", " "), f"{v:,}".replace(",", "\\,"), f"{v:,}".replace(",", "{,}"),
                 f"{v:,}".replace(",", "\\ "), str(v), f"{v:_}", f"{v:,}".replace(",", ".")]
    else:
        a, b = rng.randint(0, 99), rng.randint(1, 99)
        gold = rng.choice([f"{a}.{b:02d}", f"{a}.{b}"])
        x, y = (a, b) if rng.random() < 0.7 else (a, b + 1)
        forms = [f"{x},{y:02d}", f"{x}.{y:02d}", f"{x}{{,}}{y:02d}", f"{x},{y}", f"{x}.{y}", f"{x}.{y:02d}0"]
    return gold, rng.choice(forms)


def _fraction(rng: random.Random) -> Fraction:
    return Fraction(rng.randint(-9, 19), rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 11]))


def intervals(rng: random.Random):
    lo, hi = _fraction(rng), _fraction(rng)
    lo, hi = min(lo, hi), max(lo, hi) + (lo == hi)
    left, right = rng.choice("(["), rng.choice(")]")
    gold = f"{left}{_frac(lo)}, {_frac(hi)}{right}"
    if rng.random() < 0.2:  # unbounded below
        left, lo = "(", None
        gold = f"(-\\infty, {_frac(hi)}{right}"
    wl, wr = (left, right) if rng.random() < 0.7 else (rng.choice("(["), rng.choice(")]"))
    show = [
        lambda v: _frac(v), lambda v: _dec(v, 6), lambda v: _dec(v, 4), lambda v: _dec(v, 2),
        lambda v: f"{v.numerator}/{v.denominator}" if v.denominator != 1 else str(v.numerator),
        lambda v: _frac(v).replace("\\frac", "\\dfrac"),
    ]
    fmt = rng.choice(show)
    low = "-\\infty" if lo is None else fmt(lo)
    body = f"{low}, {fmt(hi)}"
    forms = [f"{wl}{body}{wr}", f"\\left{wl}{body}\\right{wr}", f"x \\in {wl}{body}{wr}", f"{wl}{body}{wr} "]
    return gold, rng.choice(forms)


def inequalities(rng: random.Random):
    a, b = sorted(rng.sample(range(-12, 13), 2))
    gold = rng.choice([f"x \\in [{a},{b}]", f"[{a},{b}]", f"[{a}, {b}]", f"{a} \\le x \\le {b}", f"({a},{b})",
                       f"x \\in ({a},{b})"])
    x, y = (a, b) if rng.random() < 0.7 else (a, b + 1)
    le = rng.choice(["\\le", "\\leq", "\\leqslant", "<", "≤"])
    forms = [f"{x} {le} x {le} {y}", f"{x} \\le x \\le {y}", f"{x} < x < {y}", f"x \\in [{x},{y}]", f"[{x},{y}]",
             f"x \\geq {x} \\text{{ and }} x \\leq {y}", f"{x}\\leq x\\leq {y}", f"({x}, {y})",
             f"\\{{x \\mid {x} \\le x \\le {y}\\}}"]
    return gold, rng.choice(forms)


def sets(rng: random.Random):
    items = rng.sample(range(-9, 20), rng.randint(2, 4))
    gold = rng.choice(["\\{" + ", ".join(map(str, items)) + "\\}", ", ".join(map(str, items)),
                       "x = " + ", ".join(map(str, items))])
    shown = list(items)
    rng.shuffle(shown)
    if rng.random() < 0.3:
        shown = shown[:-1] if rng.random() < 0.5 else shown + [max(items) + 1]
    s = [str(v) for v in shown]
    joined_and = ", ".join(s[:-1]) + (", and " if len(s) > 2 else " and ") + s[-1]
    forms = ["\\{" + ", ".join(s) + "\\}", ", ".join(s), joined_and, " or ".join(f"x = {v}" for v in s),
             ", ".join(f"${v}$" for v in s), " and ".join(f"$\\boxed{{{v}}}$" for v in s),
             ", ".join(f"\\boxed{{{v}}}" for v in s), "x = " + ", ".join(s), "\\boxed{" + ", ".join(s) + "}",
             "$x \\in \\{" + ", ".join(s) + "\\}$"]
    return gold, rng.choice(forms)


def tuples(rng: random.Random):
    a, b = _fraction(rng), _fraction(rng)
    gold = rng.choice([f"({_frac(a)}, {_frac(b)})", f"({_frac(a)},{_frac(b)})",
                       f"\\left({_frac(a)}, {_frac(b)}\\right)"])
    x, y = (a, b) if rng.random() < 0.7 else (b, a)
    fmt = rng.choice([_frac, lambda v: _dec(v, 6), lambda v: _dec(v, 3)])
    forms = [f"({fmt(x)}, {fmt(y)})", f"\\left({fmt(x)},{fmt(y)}\\right)", f"x = {fmt(x)}, y = {fmt(y)}",
             f"$\\boxed{{{fmt(x)}}}$ and $\\boxed{{{fmt(y)}}}$", f"(x, y) = ({fmt(x)}, {fmt(y)})",
             f"\\boxed{{({fmt(x)}, {fmt(y)})}}", f"${fmt(x)}$ and ${fmt(y)}$"]
    return gold, rng.choice(forms)


def matrices(rng: random.Random):
    n = rng.choice([2, 2, 3])
    cells = [[_fraction(rng) for _ in range(n)] for _ in range(rng.choice([1, n]))]
    env = rng.choice(["pmatrix", "bmatrix"])

    def matrix(rows, fmt, kind):
        body = " \\\\ ".join(" & ".join(fmt(v) for v in row) for row in rows)
        if kind == "array":
            return f"\\left(\\begin{{array}}{{{'c' * len(rows[0])}}} {body} \\end{{array}}\\right)"
        return f"\\begin{{{kind}}} {body} \\end{{{kind}}}"

    gold = matrix(cells, _frac, env)
    shown = [list(row) for row in cells]
    if rng.random() < 0.3:
        shown[0][0] += 1
    fmt = rng.choice([_frac, lambda v: _dec(v, 6), lambda v: _dec(v, 2)])
    kind = rng.choice(["pmatrix", "bmatrix", "array", env])
    forms = [matrix(shown, fmt, kind), "\\boxed{" + matrix(shown, fmt, kind) + "}"]
    if len(shown) == 1:
        forms.append("(" + ", ".join(fmt(v) for v in shown[0]) + ")")
    return gold, rng.choice(forms)


def expressions(rng: random.Random):
    k = rng.randint(2, 9)
    gold, right, wrong = rng.choice([
        (f"{k}\\sqrt{{2}}", [f"\\sqrt{{{2 * k * k}}}", f"{k} \\sqrt 2", f"{k}*\\sqrt{{2}}", f"{k}\\sqrt{{2}}"],
         [f"{k}\\sqrt{{3}}", f"{k + 1}\\sqrt{{2}}"]),
        (f"\\frac{{\\pi}}{{{k}}}", [f"\\pi/{k}", f"\\frac{{1}}{{{k}}}\\pi", f"{_dec(Fraction(1, k), 6)}\\pi"],
         [f"{k}\\pi", f"\\frac{{\\pi}}{{{k + 1}}}"]),
        (f"x^2 + {2 * k}x + {k * k}", [f"(x+{k})^2", f"(x + {k})(x + {k})", f"x^{{2}}+{2 * k}x+{k * k}"],
         [f"(x-{k})^2", f"x^2+{k * k}"]),
        (f"y = {k}x + 1", [f"y={k}x+1", f"{k}x+1", f"y = 1 + {k}x"], [f"y = {k}x - 1"]),
    ])
    return gold, rng.choice(right if rng.random() < 0.7 else wrong)


def multiple_boxes(rng: random.Random):
    a, b = rng.sample(range(1, 50), 2)
    gold = rng.choice([f"{a}", f"\\{{{a}, {b}\\}}", f"({a}, {b})", f"{a}, {b}"])
    forms = [f"\\boxed{{{a}}} and \\boxed{{{b}}}", f"$\\boxed{{{a}}}$ and $\\boxed{{{b}}}$",
             f"$\\boxed{{{a}}}$, $\\boxed{{{b}}}$", f"\\boxed{{{a}}}\\boxed{{{b}}}",
             f"\\boxed{{{b}}} then \\boxed{{{a}}}", f"first $\\boxed{{{b}}}$, finally $\\boxed{{{a}}}$",
             f"$\\boxed{{{a}, {b}}}$", f"$\\boxed{{{a}}}$ or $\\boxed{{{b}}}$",
             f"\\boxed{{{a}}}, \\boxed{{{b}}}", f"$x = \\boxed{{{a}}}$ and $y = \\boxed{{{b}}}$"]
    return gold, rng.choice(forms)


FAMILIES = {
    "units": units,
    "percent": percent,
    "separators": separators,
    "intervals": intervals,
    "inequalities": inequalities,
    "sets": sets,
    "tuples": tuples,
    "matrices": matrices,
    "expressions": expressions,
    "multiple_boxes": multiple_boxes,
}


def corpus(size: int = 3000, seed: int = 15) -> list[tuple[str, str, str]]:
    """``size`` cases ``(family, gold, answer part)``, the families in turn, each inside a random wrapper.

    Cases are unique: a repeat would only test the verdict cache.
    """
    rng = random.Random(seed)
    cases, seen = [], set()
    names = list(FAMILIES)
    attempts = 0
    while len(cases) < size and attempts < size * 20:
        attempts += 1
        family = names[len(cases) % len(names)]
        gold, form = FAMILIES[family](rng)
        wrapper = rng.choice(AROUND)
        if "\\boxed" in form and "boxed" in wrapper:
            wrapper = "%s"
        answer = wrapper % form if "$" not in form or "$" not in wrapper else wrapper.replace("$", "") % form
        if (gold, answer) not in seen:
            seen.add((gold, answer))
            cases.append((family, gold, answer))
    return cases
