"""What a scan keeps of the request: a device class, an OS class and a country
(docs/api.md section 7, "Privacy"; the OS class serves routing, section 14).
Pure functions; the User-Agent is read once here and discarded by the caller.

Kept import-light (``re`` only): the redirect function imports this on its hot
path.
"""

from __future__ import annotations

import re

MOBILE, TABLET, DESKTOP, UNKNOWN = "mobile", "tablet", "desktop", "unknown"
DEVICES = (MOBILE, TABLET, DESKTOP, UNKNOWN)
IOS, ANDROID, OTHER = "ios", "android", "other"
OSES = (IOS, ANDROID, OTHER)  # routing's OS classes (docs/api.md section 14)
WINDOWS, MACOS, LINUX = "windows", "macos", "linux"
OS_FAMILIES = (IOS, ANDROID, WINDOWS, MACOS, LINUX, OTHER)  # analytics' (section 16.3)
UNKNOWN_COUNTRY = "XX"  # stored for a missing or invalid country; always folded into "Other"

# Crawlers, monitors and link-preview fetchers: redirected, never counted.
# Plain HTTP clients (curl, wget, python-requests) are not bots: a person ran them.
_BOT = re.compile(
    r"(?<!cu)bot\b|bot[/_-]|crawl|spider|slurp|facebookexternalhit|facebookcatalog|meta-externalagent"
    r"|twitterbot|slack(?:bot|-imgproxy)|whatsapp/|telegrambot|discordbot|linkedinbot|skypeuripreview"
    r"|pinterest|embedly|quora link preview|redditbot|applebot|bingpreview|google-inspectiontool"
    r"|googleother|headlesschrome|lighthouse|vkshare|w3c_validator|outbrain|iframely|preview"
    r"|ahrefs|semrush|mj12|yandex|baiduspider|petalbot|bytespider|gptbot|chatgpt-user|claudebot"
    r"|ccbot|mastodon|uptimerobot|pingdom|statuscake|site24x7|datadog|newrelicpinger",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|nexus (?:7|9|10)\b|sm-t\d|android(?!.*mobile)",
                     re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|windows phone|blackberry|bb10|opera mini|iemobile|webos",
                     re.IGNORECASE)
_DESKTOP = re.compile(r"windows nt|macintosh|mac os x|x11|linux|cros|freebsd|openbsd", re.IGNORECASE)
# Windows Phone sends "Android" too; iPadOS in desktop mode sends a Macintosh UA (it reads as "other").
_WINDOWS_PHONE = re.compile(r"windows phone", re.IGNORECASE)
_ANDROID = re.compile(r"android", re.IGNORECASE)
_IOS = re.compile(r"iphone|ipad|ipod", re.IGNORECASE)
_WINDOWS = re.compile(r"windows nt|windows 1\d|win64|win32", re.IGNORECASE)
_MACOS = re.compile(r"macintosh|mac os x", re.IGNORECASE)
_CHROME_OS = re.compile(r"\bcros\b", re.IGNORECASE)
_LINUX = re.compile(r"linux|x11|ubuntu|fedora|debian", re.IGNORECASE)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# User-assigned ISO 3166 codes (no country): AA, QM-QZ, XA-XZ, ZZ; CDNs send XX or T1 for "unknown"/Tor.
_NOT_A_COUNTRY = re.compile(r"^(?:AA|Q[M-Z]|X[A-Z]|ZZ)$")


def is_bot(user_agent: str | None) -> bool:
    return bool(user_agent) and _BOT.search(user_agent or "") is not None


def device(user_agent: str | None) -> str:
    """``mobile``, ``tablet``, ``desktop`` or ``unknown`` from a short regex."""
    if not user_agent:
        return UNKNOWN
    if _TABLET.search(user_agent):
        return TABLET
    if _MOBILE.search(user_agent):
        return MOBILE
    if _DESKTOP.search(user_agent):
        return DESKTOP
    return UNKNOWN


def os_family(user_agent: str | None) -> str:
    """``ios``, ``android``, ``windows``, ``macos``, ``linux`` or ``other`` (analytics' OS class).
    Windows Phone (which claims Android) and ChromeOS are ``other``; iPadOS in desktop mode sends a
    Macintosh User-Agent and reads as ``macos``: the User-Agent cannot tell."""
    if not user_agent or _WINDOWS_PHONE.search(user_agent):
        return OTHER
    if _ANDROID.search(user_agent):
        return ANDROID
    if _IOS.search(user_agent):
        return IOS
    if _WINDOWS.search(user_agent):
        return WINDOWS
    if _MACOS.search(user_agent):
        return MACOS
    if _CHROME_OS.search(user_agent):
        return OTHER
    if _LINUX.search(user_agent):
        return LINUX
    return OTHER


def os_class(family: str) -> str:
    """Routing's OS class of an OS family: ``ios``, ``android`` or ``other`` (app-store routing)."""
    return family if family in (IOS, ANDROID) else OTHER


def country(value: str | None) -> str:
    """An ISO 3166-1 alpha-2 code, or ``XX`` for anything else (missing,
    malformed, user-assigned, Tor's ``T1``)."""
    if not value:
        return UNKNOWN_COUNTRY
    code = value.strip().upper()
    if not _COUNTRY.match(code) or _NOT_A_COUNTRY.match(code):
        return UNKNOWN_COUNTRY
    return code
