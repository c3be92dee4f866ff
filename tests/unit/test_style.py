"""style_json validation (docs/api.md section 6, field rules; 6.9)."""

from __future__ import annotations

import json

import pytest

from qrpro.domain.errors import ValidationFailed
from qrpro.domain.style import DEFAULTS, SCALE_MAX, contrast_ratio, parse_style_json, resolve


def fails(value: str) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse_style_json(value)
    body = info.value.body()
    assert body["error"] == "validation_error"
    assert body["field"] == "style_json"
    return str(body["message"])


def test_valid_style_is_normalised() -> None:
    got = parse_style_json(json.dumps({"dark": "#1A237E", "light": "#FfF", "error": "q", "scale": 12, "border": 0}))
    assert got == {"dark": "#1a237e", "light": "#ffffff", "error": "q", "scale": 12, "border": 0}


def test_empty_object_and_resolve_defaults() -> None:
    assert parse_style_json("{}") == {}
    assert resolve(None) == DEFAULTS
    assert resolve('{"scale": 3}') == {**DEFAULTS, "scale": 3}


def test_unknown_key_is_named() -> None:
    assert "'colour'" in fails('{"dark": "#000", "colour": "#fff"}')


@pytest.mark.parametrize("colour", ["black", "#12", "#12345", "#1234567", "#ggg", "rgb(0,0,0)", "#0000", 0, None])
def test_bad_colour_names_the_key(colour: object) -> None:
    assert fails(json.dumps({"dark": colour})).startswith("dark must be a CSS hex colour")
    assert fails(json.dumps({"light": colour})).startswith("light must be a CSS hex colour")


def test_low_contrast_is_rejected() -> None:
    assert contrast_ratio("#777777", "#ffffff") > 4
    assert contrast_ratio("#aaaaaa", "#ffffff") < 3
    message = fails('{"dark": "#aaaaaa", "light": "#ffffff"}')
    assert "dark" in message and "light" in message and "3:1" in message
    # a key left out counts as its default: light grey on the default white
    assert "3:1" in fails('{"dark": "#bbbbbb"}')
    # saturated colours: pure blue on pure red is only about 2.1:1
    assert "3:1" in fails('{"dark": "#0000ff", "light": "#ff0000"}')


def test_inverted_colours_are_rejected() -> None:
    message = fails('{"dark": "#ffffff", "light": "#000000"}')
    assert "dark" in message and "darker than light" in message
    assert "darker than light" in fails('{"dark": "#eeeeee", "light": "#222"}')


def test_equal_colours_are_rejected() -> None:
    assert "3:1" in fails('{"dark": "#336699", "light": "#336699"}')


@pytest.mark.parametrize("value", ['"H"', '"x"', "1", "null", '["h"]'])
def test_bad_error_level(value: str) -> None:
    assert fails(f'{{"error": {value}}}').startswith("error must be one of")


@pytest.mark.parametrize("value", ["0", str(SCALE_MAX + 1), "2.5", "10.0", "true", '"10"', "-1"])
def test_bad_scale(value: str) -> None:
    assert fails(f'{{"scale": {value}}}').startswith("scale must be an integer")


@pytest.mark.parametrize("value", ["-1", "21", "1.5", "false", '"4"'])
def test_bad_border(value: str) -> None:
    assert fails(f'{{"border": {value}}}').startswith("border must be an integer")


def test_bounds_are_inclusive() -> None:
    assert parse_style_json('{"scale": 1, "border": 20}') == {"scale": 1, "border": 20}
    assert parse_style_json(f'{{"scale": {SCALE_MAX}, "border": 0}}') == {"scale": SCALE_MAX, "border": 0}


@pytest.mark.parametrize("value", ["", "[]", '"x"', "1", "null", "{", '{"scale": NaN}', '{"a": Infinity}'])
def test_not_a_json_object(value: str) -> None:
    fails(value)


def test_duplicate_key_is_rejected() -> None:
    assert "'dark'" in fails('{"dark": "#000000", "dark": "#ffffff"}')


def test_size_limit_is_8_kib() -> None:
    padded = '{"dark": "#000000"' + " " * (8192 - 19) + "}"
    assert len(padded.encode()) == 8192
    assert parse_style_json(padded) == {"dark": "#000000"}
    assert "8192" in fails(padded[:-1] + " }")


def test_style_json_accepts_the_object_itself_and_keeps_it_as_text() -> None:
    from qrpro.domain.code_bodies import CodeCreate, CodePatch

    created = CodeCreate.model_validate({"url": "https://a.example/", "style_json": {"dark": "#112233", "scale": 4}})
    assert created.style_json == '{"dark":"#112233","scale":4}'
    assert CodePatch.model_validate({"style_json": '{"dark": "#112233"}'}).style_json == '{"dark": "#112233"}'
    from qrpro.domain.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="hex colour"):
        CodeCreate.model_validate({"url": "https://a.example/", "style_json": {"dark": "red"}})
