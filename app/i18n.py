"""Choosing the language of human-readable messages: Chinese by default, English on request."""

from flask import has_request_context, request

SUPPORTED = ("zh", "en")


def current_language() -> str:
    if not has_request_context():
        return "zh"
    best = request.accept_languages.best_match(["zh", "zh-CN", "en", "en-US", "en-GB"])
    if best and best.startswith("en"):
        return "en"
    return "zh"


def pick(texts: dict[str, str], **params) -> str:
    text = texts.get(current_language()) or texts["zh"]
    return text.format(**params) if params else text
