"""USSD layout: golden screens, budget on every page, pagination rules."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path

import pytest

from hotline.base.errors import FlowError
from hotline.base.values import Clock, Count, Date, Duration, Money, Value, Volume
from hotline.flow.screen import Option, PromptPart, Screen
from hotline.i18n import CatalogSet, TextFormatter, load_catalogs
from ussd.budget import Limits, cost, encoding_of, fits
from ussd.render import UssdLayout, break_points

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("zh-CN", "en")
MAIN_OPTIONS = ("main.balance", "main.data", "main.voice_sms", "main.summary", "main.language")
SUMMARY = (
    "result.summary_title",
    "result.balance",
    "result.data_until",
    "result.voice_until",
    "result.sms_until",
    "result.as_of",
)


@pytest.fixture(scope="module")
def catalogs() -> CatalogSet:
    return load_catalogs(ROOT / "prompts", LANGS, "zh-CN")


@pytest.fixture(scope="module")
def layout(catalogs: CatalogSet) -> UssdLayout:
    return UssdLayout(catalogs)


def _values() -> dict[str, Value]:
    expiry = Date(dt.date(2026, 12, 31))
    return {
        "balance": Money(1250),
        "data": Volume(1536 * 1024 * 1024),
        "data_expiry": expiry,
        "voice": Duration(6000),
        "voice_expiry": expiry,
        "sms": Count(50),
        "sms_expiry": expiry,
        "as_of": Clock(dt.datetime(2026, 11, 24, 10, 30)),
    }


def _menu(language: str, **kw: object) -> Screen:
    options = tuple(
        Option(str(i), PromptPart(key)) for i, key in enumerate((*MAIN_OPTIONS, "main.exit"), 1)
    )
    return Screen("main", language, (PromptPart("main.title"),), options, **kw)  # type: ignore[arg-type]


def _catalogs(tmp_path: Path, extra_zh: str = "", extra_en: str = "") -> CatalogSet:
    nav_zh = "  ussd:\n    more: 98.更多\n    back: 0.返回\n    prev: 0.上页\n    home: 00.主页\n    page: ({page:int}/{pages:int})\n"
    nav_en = "  ussd:\n    more: 98.More\n    back: 0.Back\n    prev: 0.Prev\n    home: 00.Home\n    page: ({page:int}/{pages:int})\n"
    (tmp_path / "zh-CN.yaml").write_text(
        f"language: zh-CN\nprompts:\n{nav_zh}{extra_zh}", encoding="utf-8"
    )
    (tmp_path / "en.yaml").write_text(f"language: en\nprompts:\n{nav_en}{extra_en}", "utf-8")
    return load_catalogs(tmp_path, LANGS, "zh-CN")


def _within(page: str, limits: Limits) -> None:
    enc = encoding_of(page)
    assert fits(page, limits), f"{enc} {cost(page)} > {limits}: {page!r}"
    assert fits("CON " + page, Limits(limits.gsm7 + 4, limits.ucs2 + 4))


# ------------------------------------------------------------------ goldens


def test_main_menu_in_chinese_is_one_page(layout: UssdLayout) -> None:
    screen = _menu("zh-CN")
    assert layout.lay_out(screen).pages == 1
    assert layout.render(screen) == (
        "话费查询\n1.话费余额\n2.流量余量\n3.通话和短信\n4.套餐摘要\n5.语言/Language\n6.退出"
    )
    assert not layout.lay_out(screen).ends


def test_notice_and_navigation_lines(layout: UssdLayout) -> None:
    screen = Screen(
        "language",
        "zh-CN",
        (PromptPart("language.title"),),
        (Option("1", PromptPart("language.zh")), Option("2", PromptPart("language.en"))),
        notice=PromptPart("nav.invalid"),
        can_go_back=True,
        can_go_home=True,
    )
    assert layout.render(screen) == (
        "输入有误，请重新选择。\n请选择语言\n1.中文\n2.English\n0.返回 00.主页"
    )
    back_only = Screen("language", "en", screen.parts, screen.options, can_go_back=True)
    assert layout.render(back_only) == "Choose a language\n1.中文\n2.English\n0.Back"


def test_unknown_language_falls_back_to_default(layout: UssdLayout) -> None:
    assert layout.render(_menu("fr")) == layout.render(_menu("zh-CN"))


def test_short_final_screen_has_no_navigation(layout: UssdLayout) -> None:
    screen = Screen(
        "show_balance",
        "zh-CN",
        (PromptPart("result.balance", _values()),),
        ends=True,
        can_go_back=True,
        can_go_home=True,
    )
    assert layout.render(screen) == "您的话费余额为12.50元。"
    assert layout.lay_out(screen).ends
    en = Screen("show_balance", "en", (PromptPart("result.balance", _values()),), ends=True)
    assert layout.render(en) == "Your main balance is CNY 12.50."


# --------------------------------------------------------------- pagination


def test_english_menu_is_gsm7_on_one_page(layout: UssdLayout) -> None:
    """The English catalog keeps its labels GSM-7, so the whole menu fits one screen."""
    screen = _menu("en", can_go_back=True, can_go_home=True)
    pages = layout.pages(screen)
    assert len(pages) == 1
    assert pages[0].endswith("\n0.Back 00.Home")
    _within(pages[0], layout.page_limits)
    lines = pages[0].split("\n")
    for i, key in enumerate((*MAIN_OPTIONS, "main.exit"), 1):
        label = layout.catalogs["en"].render(PromptPart(key), _fmt())
        assert lines.count(f"{i}.{label}") == 1  # every option whole, exactly once


def _fmt() -> TextFormatter:
    return TextFormatter()


@pytest.mark.parametrize("language", LANGS)
def test_long_final_screen_is_paginated_and_only_its_last_page_ends(
    layout: UssdLayout, language: str
) -> None:
    values = _values()
    parts = tuple(PromptPart(key, values) for key in SUMMARY)
    ending = Screen("show_summary", language, parts, ends=True, can_go_back=True)
    pages = layout.pages(ending)
    assert len(pages) >= 2
    more = layout.catalogs[language].render(PromptPart("ussd.more"), _fmt())
    for number, page in enumerate(pages):
        _within(page, layout.page_limits)
        last = number == len(pages) - 1
        assert (more in page) is not last
        shown = Screen("show_summary", language, parts, ends=True, page=number, can_go_back=True)
        laid = layout.lay_out(shown)
        assert (laid.text, laid.ends, laid.pages) == (page, last, len(pages))


def test_chinese_text_breaks_between_ideographs_never_inside_numbers(layout: UssdLayout) -> None:
    parts = tuple(PromptPart(key, _values()) for key in SUMMARY)
    pages = layout.pages(Screen("show_summary", "zh-CN", parts, ends=True))
    lines = [line for page in pages for line in page.split("\n")]
    for token in ("12.50元", "1.50GB", "2026年12月31日", "10:30", "100分钟"):
        # Every occurrence whole on one line: count across lines equals count in the text.
        whole = sum(line.count(token) for line in lines)
        joined = "".join(p.replace("\n98.更多", "").replace("\n", "") for p in pages)
        assert whole >= 1 and whole == joined.count(token), token
    for page in pages:
        for line in page.split("\n"):
            assert not line.startswith(("，", "。", "）"))
            assert not line.endswith(("（",))


def test_page_index_is_clamped(layout: UssdLayout) -> None:
    parts = tuple(PromptPart(key, _values()) for key in SUMMARY)
    base = Screen("show_summary", "zh-CN", parts, ends=True)
    pages = layout.pages(base)
    assert layout.render(Screen("s", "zh-CN", parts, ends=True, page=99)) == pages[-1]
    assert layout.render(Screen("s", "zh-CN", parts, ends=True, page=-3)) == pages[0]
    assert layout.lay_out(Screen("s", "zh-CN", parts, ends=True, page=99)).ends


def test_notice_repeats_on_every_page(catalogs: CatalogSet) -> None:
    small = UssdLayout(catalogs, Limits(gsm7=100, ucs2=80))
    screen = _menu("en", notice=PromptPart("nav.invalid"))
    pages = small.pages(screen)
    assert len(pages) >= 2
    assert all(page.startswith("Invalid choice, please try again.\n") for page in pages)


def test_configured_limits_are_respected(catalogs: CatalogSet) -> None:
    small = UssdLayout(catalogs, Limits(gsm7=60, ucs2=30))
    assert small.page_limits == Limits(56, 26)
    for language in LANGS:
        for screen in (
            _menu(language, can_go_back=True, can_go_home=True, notice=PromptPart("nav.invalid")),
            Screen("x", language, tuple(PromptPart(k, _values()) for k in SUMMARY), ends=True),
        ):
            pages = small.pages(screen)
            assert len(pages) >= 2
            for page in pages:
                _within(page, small.page_limits)


def test_latin_words_are_never_cut(tmp_path: Path) -> None:
    words = [f"word{i}" for i in range(80)]
    cats = _catalogs(tmp_path, extra_en=f"  long: {' '.join(words)}\n", extra_zh="  long: 长\n")
    layout = UssdLayout(cats)
    pages = layout.pages(Screen("long", "en", (PromptPart("long"),), ends=True))
    assert len(pages) >= 3
    seen = []
    for page in pages:
        _within(page, layout.page_limits)
        body = page.split("\n")[0]
        seen.extend(body.split(" "))
    assert seen == words


def test_a_word_longer_than_a_page_is_cut_rather_than_overflowing(tmp_path: Path) -> None:
    cats = _catalogs(tmp_path, extra_en=f"  long: {'x' * 500}\n", extra_zh="  long: 长\n")
    layout = UssdLayout(cats)
    pages = layout.pages(Screen("long", "en", (PromptPart("long"),), ends=True))
    for page in pages:
        _within(page, layout.page_limits)
    assert "".join(p.split("\n")[0] for p in pages) == "x" * 500


def test_random_screens_stay_within_budget_and_keep_options_whole(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    zh_words = [
        "话费",
        "余额",
        "流量",
        "套餐",
        "，",
        "。",
        "有效期至",
        "12.50元",
        "查询",
        "（截至）",
    ]
    en_words = [
        "Data",
        "left:",
        "1.50GB,",
        "valid",
        "until",
        "31",
        "Dec",
        "2026.",
        "€5",
        "[ok]",
        "a|b",
    ]
    zh_lines, en_lines = [], []
    for i in range(40):
        zh = "".join(rng.choice(zh_words) for _ in range(rng.randint(1, 40)))
        en = " ".join(rng.choice(en_words) for _ in range(rng.randint(1, 40)))
        zh_lines.append(f'  p{i}: "{zh}"\n')
        en_lines.append(f'  p{i}: "{en}"\n')
    cats = _catalogs(tmp_path, "".join(zh_lines), "".join(en_lines))
    for limits in (Limits(), Limits(160, 70), Limits(60, 30)):
        layout = UssdLayout(cats, limits)
        for _ in range(150):
            language = rng.choice(LANGS)
            parts = tuple(PromptPart(f"p{rng.randrange(40)}") for _ in range(rng.randint(0, 3)))
            options = tuple(
                Option(str(k), PromptPart(f"p{rng.randrange(40)}"))
                for k in range(1, rng.randint(1, 9))
            )
            short = [o for o in options if cost(f"{o.key}." + _render(cats, language, o)) < 20]
            screen = Screen(
                "r",
                language,
                parts,
                tuple(short),
                ends=rng.random() < 0.3,
                notice=PromptPart("p0") if rng.random() < 0.2 else None,
                can_go_back=rng.random() < 0.5,
                can_go_home=rng.random() < 0.5,
            )
            pages = layout.pages(screen)
            for page in pages:
                _within(page, layout.page_limits)
            lines = [line for page in pages for line in page.split("\n")]
            for option in short:
                assert f"{option.key}.{_render(cats, language, option)}" in lines


def _render(cats: CatalogSet, language: str, option: Option) -> str:
    return cats[language].render(option.label, _fmt())


# ------------------------------------------------------------------- misc


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Data left: 1.50GB", ["Data ", "left: ", "1.50GB"]),
        ("话费余额", ["话", "费", "余", "额"]),
        ("余额12.50元。谢谢", ["余", "额12.50元。", "谢", "谢"]),
        ("至2026年12月31日。", ["至2026年12月31日。"]),
        ("剩余（截至）", ["剩", "余", "（截", "至）"]),
        ("", [""]),
    ],
)
def test_break_points(text: str, pieces: list[str]) -> None:
    points = [0, *break_points(text), len(text)]
    assert [text[a:b] for a, b in itertools.pairwise(points)] == pieces


def test_missing_navigation_prompts_are_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "zh-CN.yaml").write_text("language: zh-CN\nprompts:\n  a: 好\n", "utf-8")
    (tmp_path / "en.yaml").write_text("language: en\nprompts:\n  a: ok\n", "utf-8")
    with pytest.raises(FlowError, match=r"zh-CN\.yaml:1: prompt 'ussd\.more' is missing"):
        UssdLayout(load_catalogs(tmp_path, LANGS, "zh-CN"))


def test_static_screens_are_cached(layout: UssdLayout) -> None:
    assert layout.pages(_menu("zh-CN")) is layout.pages(_menu("zh-CN"))
    assert layout.session_ttl == 180
    assert layout.channel == "ussd"
