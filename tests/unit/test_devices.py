"""What a scan keeps of a request: device class, OS class, country, bot or not."""

from __future__ import annotations

import pytest

from qrpro.domain.devices import country, device, is_bot, os_class, os_family

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/124.0 Mobile Safari/537.36")
CUBOT_PHONE = ("Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/120.0 Mobile Safari/537.36")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0 Safari/537.36")
KINDLE = "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.1 like Chrome"
WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0 Safari/537.36")
MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
       "Version/17.4 Safari/605.1.15")
LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROMEBOOK = "Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"


@pytest.mark.parametrize(("ua", "expected"), [
    (IPHONE, "mobile"), (ANDROID_PHONE, "mobile"), (CUBOT_PHONE, "mobile"),
    ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) Mobile Safari/537.36", "mobile"),
    ("Opera/9.80 (J2ME/MIDP; Opera Mini/9.80) Presto/2.12.423 Version/12.16", "mobile"),
    (IPAD, "tablet"), (ANDROID_TABLET, "tablet"), (KINDLE, "tablet"),
    (WINDOWS, "desktop"), (MAC, "desktop"), (LINUX, "desktop"), (CHROMEBOOK, "desktop"),
    ("curl/8.5.0", "unknown"), ("Wget/1.21", "unknown"), ("", "unknown"), (None, "unknown"),
])
def test_device_classes(ua: str | None, expected: str) -> None:
    assert device(ua) == expected


@pytest.mark.parametrize(("ua", "expected"), [
    (IPHONE, "ios"), (IPAD, "ios"),
    ("Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "ios"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/124.0 Mobile/15E148 Safari/604.1", "ios"),
    (ANDROID_PHONE, "android"), (CUBOT_PHONE, "android"), (ANDROID_TABLET, "android"), (KINDLE, "android"),
    ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) Mobile Safari/537.36", "other"),
    (WINDOWS, "windows"), (MAC, "macos"), (LINUX, "linux"), (CHROMEBOOK, "other"),
    ("curl/8.5.0", "other"), ("", "other"), (None, "other"),
])
def test_os_families_and_routings_classes(ua: str | None, expected: str) -> None:
    """Analytics' OS family (section 16.3); routing reads only ios, android or other of it (section 14)."""
    assert os_family(ua) == expected
    assert os_class(os_family(ua)) == (expected if expected in ("ios", "android") else "other")


@pytest.mark.parametrize("ua", [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Slackbot 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "WhatsApp/2.23.20.0 A",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36 (Applebot/0.1)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
    "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/124.0 Safari/537.36",
    "Pinterestbot/1.0", "redditbot/1.0", "Embedly +support@embed.ly", "Iframely/1.3.1",
])
def test_bots_and_link_previews(ua: str) -> None:
    assert is_bot(ua)


@pytest.mark.parametrize("ua", [IPHONE, ANDROID_PHONE, CUBOT_PHONE, IPAD, WINDOWS, MAC, LINUX, "curl/8.5.0",
                                "python-requests/2.31", "", None])
def test_people_and_plain_clients_are_not_bots(ua: str | None) -> None:
    assert not is_bot(ua)


@pytest.mark.parametrize(("header", "expected"), [
    ("US", "US"), ("de", "DE"), (" fr ", "FR"), ("GB", "GB"),
    (None, "XX"), ("", "XX"), ("USA", "XX"), ("U", "XX"), ("T1", "XX"), ("12", "XX"), ("XX", "XX"),
    ("ZZ", "XX"), ("AA", "XX"), ("QZ", "XX"), ("É1", "XX"), ("<script>", "XX"),
])
def test_country_is_two_letters_or_unknown(header: str | None, expected: str) -> None:
    assert country(header) == expected
