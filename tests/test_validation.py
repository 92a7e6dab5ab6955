"""Input rules: text fields, links (platforms, schemes, credentials), handles and ids."""

from __future__ import annotations

import pytest

from errors import ValidationError
from services import validation


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://www.youtube.com/watch?v=abc", "YouTube"),
        ("https://youtu.be/abc", "YouTube"),
        ("https://music.youtube.com/watch?v=abc", "YouTube Music"),
        ("https://open.spotify.com/track/1", "Spotify"),
        ("https://soundcloud.com/a/b", "SoundCloud"),
        ("https://music.apple.com/us/album/x/1", "Apple Music"),
        ("https://www.deezer.com/track/1", "Deezer"),
        ("https://tidal.com/browse/track/1", "Tidal"),
        ("https://artist.bandcamp.com/track/x", "Bandcamp"),
        ("https://audiomack.com/a/song/b", "Audiomack"),
        ("https://www.tiktok.com/@a/video/1", "TikTok"),
        ("https://drive.google.com/file/d/x", "Google Drive"),
        ("https://www.dropbox.com/s/x", "Dropbox"),
        ("http://example.org/song", "Link"),
    ],
)
def test_platforms_are_recognised(url: str, platform: str) -> None:
    assert validation.validate_link(url).platform == platform


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "not a url",
        "youtube.com/watch?v=x",
        "javascript:alert(1)",
        "data:text/html;base64,xx",
        "ftp://files.test/x.mp3",
        "https://user:pass@evil.test/x",
        "https://user@evil.test/x",
        "https://localhost/x",
        "https:///nohost",
        "https://exa mple.com/x",
        "https://example.com/" + "a" * 600,
        "https://bad_host!.com/x",
        "https://example.com:0/x",
        "https://\u202eevil.com/x",
    ],
)
def test_bad_links_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        validation.validate_link(bad)
    assert info.value.message and len(info.value.message) < 200


def test_same_song_links_share_a_key() -> None:
    keys = {
        validation.validate_link(u).key
        for u in (
            "https://youtu.be/abc",
            "https://www.youtube.com/watch?v=abc&t=3",
            "https://m.youtube.com/watch?v=abc",
        )
    }
    assert keys == {"youtube.com/watch?v=abc"}
    assert validation.validate_link("https://x.test/A").key != validation.validate_link("https://x.test/a").key


def test_text_is_cleaned_and_limited() -> None:
    assert validation.clean_text("  a \u200b b\t\tc ", field="Artist", maximum=100, required=True) == "a b c"
    with pytest.raises(ValidationError, match="can't be empty"):
        validation.clean_text("\u200b\u200d  ", field="Artist", maximum=100, required=True)
    assert validation.clean_text("   ", field="Note", maximum=200, required=False) is None
    assert validation.clean_text("x" * 100, field="Artist", maximum=100, required=True) == "x" * 100
    with pytest.raises(ValidationError, match="limit is 100"):
        validation.clean_text("x" * 101, field="Artist", maximum=100, required=True)
    # bidi overrides are dropped; combining characters are kept (they are real letters)
    assert validation.clean_text("a\u202eb", field="T", maximum=10, required=True) == "ab"
    assert validation.clean_text("e\u0301", field="T", maximum=10, required=True) == "é"


def test_song_key_folds_case_and_spacing() -> None:
    assert validation.song_key("The  Band", "SONG") == validation.song_key("the band", " song ")


def test_public_ids() -> None:
    assert validation.parse_public_id(" #ab12c ") == "AB12C"
    for bad in ("", "#", "ab-12", "x" * 20, "ＡＢ"):
        with pytest.raises(ValidationError):
            validation.parse_public_id(bad)
