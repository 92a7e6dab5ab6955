"""Input rules: text fields, links (platforms, schemes, credentials), handles and ids."""

from __future__ import annotations

import pytest

from errors import ValidationError
from models import BlockKind
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


# ---------------------------------------------------------------------- link keys and domains (issue 11 B6)

# (link as pasted, the key it must get): same content -> same key, different content -> different keys.
LINK_KEYS = [
    # YouTube: v, youtu.be path, shorts, music.youtube, embeds, playlists; t/si/feature/pp dropped
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s&si=abc", "youtube.com/watch?v=dQw4w9WgXcQ"),
    ("https://youtu.be/dQw4w9WgXcQ?si=Zx1&t=3", "youtube.com/watch?v=dQw4w9WgXcQ"),
    ("https://m.youtube.com/watch?feature=share&v=dQw4w9WgXcQ", "youtube.com/watch?v=dQw4w9WgXcQ"),
    ("https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDAMVM", "youtube.com/watch?v=dQw4w9WgXcQ"),
    ("https://www.youtube.com/shorts/aBcD_123-xy?feature=share", "youtube.com/watch?v=aBcD_123-xy"),
    ("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ", "youtube.com/watch?v=dQw4w9WgXcQ"),
    ("https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG&si=q",
     "youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG"),
    ("https://music.youtube.com/playlist?list=OLAK5uy_kLWIpZ", "youtube.com/playlist?list=OLAK5uy_kLWIpZ"),
    ("https://www.youtube.com/@SomeArtist/videos", "youtube.com/@SomeArtist/videos"),
    # Spotify: track/album ids, intl prefix and si dropped
    ("https://open.spotify.com/track/4cOdK2wGLETKBW3PvgPWqT?si=1a2b3c", "spotify.com/track/4cOdK2wGLETKBW3PvgPWqT"),
    ("https://open.spotify.com/intl-de/track/4cOdK2wGLETKBW3PvgPWqT", "spotify.com/track/4cOdK2wGLETKBW3PvgPWqT"),
    ("https://open.spotify.com/album/1DFixLWuPkv3KT3TnV35m3?si=x&nd=1", "spotify.com/album/1DFixLWuPkv3KT3TnV35m3"),
    ("https://spotify.link/AbC123xyz", "spotify.com/AbC123xyz"),
    # SoundCloud: the path, without utm or si; secret tokens are part of the path
    ("https://soundcloud.com/artist/track-name?utm_source=clipboard&utm_medium=text&si=9f",
     "soundcloud.com/artist/track-name"),
    ("https://m.soundcloud.com/artist/track-name", "soundcloud.com/artist/track-name"),
    ("https://soundcloud.com/artist/track-name/s-AbCdEf", "soundcloud.com/artist/track-name/s-AbCdEf"),
    ("https://on.soundcloud.com/XyZ12", "on.soundcloud.com/XyZ12"),
    # Apple Music: the track is the i parameter within an album; storefront and slug don't matter
    ("https://music.apple.com/us/album/some-album/14408577?i=14408579", "music.apple.com/album/14408577?i=14408579"),
    ("https://music.apple.com/gb/album/other/14408577?i=14408579&ls=1", "music.apple.com/album/14408577?i=14408579"),
    ("https://music.apple.com/us/album/some-album/14408577?i=14408590", "music.apple.com/album/14408577?i=14408590"),
    ("https://music.apple.com/us/song/a-song/14408579", "music.apple.com/song/14408579"),
    # Deezer and Tidal: kind and number, language prefix and tracking dropped
    ("https://www.deezer.com/en/track/3135556?utm_source=deezer&utm_content=track-3135556", "deezer.com/track/3135556"),
    ("https://deezer.com/track/3135556", "deezer.com/track/3135556"),
    ("https://www.deezer.com/fr/album/302127", "deezer.com/album/302127"),
    ("https://tidal.com/browse/track/77646178?u", "tidal.com/track/77646178"),
    ("https://listen.tidal.com/track/77646178", "tidal.com/track/77646178"),
    # Bandcamp and Audiomack: the path
    ("https://artist.bandcamp.com/track/song-name?from=discover_page", "artist.bandcamp.com/track/song-name"),
    ("https://audiomack.com/artist/song/song-name?share=1", "audiomack.com/artist/song/song-name"),
    # TikTok: the video id (the user name in the path can change)
    ("https://www.tiktok.com/@some.user/video/7234567890123456789?is_from_webapp=1&sender_device=pc",
     "tiktok.com/video/7234567890123456789"),
    ("https://m.tiktok.com/@renamed/video/7234567890123456789", "tiktok.com/video/7234567890123456789"),
    ("https://vm.tiktok.com/ZMabc123/", "vm.tiktok.com/ZMabc123"),
    # Google Drive: the file id, however the link was shaped
    ("https://drive.google.com/file/d/1AbCdEfGhIjK/view?usp=sharing", "drive.google.com/file/d/1AbCdEfGhIjK"),
    ("https://drive.google.com/open?id=1AbCdEfGhIjK&usp=drive_fs", "drive.google.com/file/d/1AbCdEfGhIjK"),
    ("https://drive.google.com/uc?export=download&id=1AbCdEfGhIjK", "drive.google.com/file/d/1AbCdEfGhIjK"),
    ("https://drive.google.com/open?id=2ZyXwVuT", "drive.google.com/file/d/2ZyXwVuT"),
    # Dropbox and OneDrive
    ("https://www.dropbox.com/s/abc123def/song.mp3?dl=0", "dropbox.com/s/abc123def/song.mp3"),
    ("https://www.dropbox.com/scl/fi/k3y9/song.wav?rlkey=xyz&dl=1", "dropbox.com/scl/fi/k3y9/song.wav"),
    ("https://onedrive.live.com/?cid=AB&resid=AB%211&authkey=%21X", "onedrive.live.com/?resid=AB%211&cid=AB"),
    ("https://1drv.ms/u/s!AmXyZ123", "onedrive.live.com/u/s!AmXyZ123"),
    # any other site: its own parameters stay (sorted), tracking goes; IDN in either spelling
    ("https://example.org/play?track=2&album=7&utm_campaign=x&fbclid=1", "example.org/play?album=7&track=2"),
    ("https://bücher.example/lied", "xn--bcher-kva.example/lied"),
    ("https://xn--bcher-kva.example/lied/", "xn--bcher-kva.example/lied"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "key"), LINK_KEYS)
def test_link_keys_keep_what_identifies_the_song_and_drop_tracking(url: str, key: str) -> None:
    assert validation.validate_link(url).key == key


def test_link_key_table_covers_the_platforms_of_spec_3() -> None:
    platforms = {validation.validate_link(url).platform for url, _ in LINK_KEYS}
    assert len(LINK_KEYS) >= 30
    expected = {"YouTube", "YouTube Music", "Spotify", "SoundCloud", "Apple Music", "Deezer", "Tidal", "Bandcamp"}
    assert expected | {"Audiomack", "TikTok", "Google Drive", "Dropbox", "OneDrive"} <= platforms


def test_different_songs_get_different_keys() -> None:
    def key(url: str) -> str:
        return validation.validate_link(url).key

    album = "https://music.apple.com/us/album/some-album/14408577"
    assert key(f"{album}?i=1") != key(f"{album}?i=2") != key(album)
    assert key("https://drive.google.com/open?id=A1") != key("https://drive.google.com/open?id=B2")
    assert key("https://www.youtube.com/playlist?list=PL1") != key("https://www.youtube.com/playlist?list=PL2")
    assert key("https://www.youtube.com/playlist?list=PL1") != key("https://www.youtube.com/watch?v=")
    assert key("https://example.org/p?id=1") != key("https://example.org/p?id=2")


@pytest.mark.parametrize(
    ("link", "domain", "blocked"),
    [
        ("https://www.youtube.com/watch?v=x", "youtu.be", True),
        ("https://youtu.be/x", "youtube.com", True),
        ("https://m.youtube.com/watch?v=x", "youtube.com", True),
        ("https://music.youtube.com/watch?v=x", "youtube.com", True),
        ("https://music.youtube.com/watch?v=x", "m.youtube.com", True),
        ("https://www.youtube.com/watch?v=x", "music.youtube.com", False),
        ("https://notyoutube.com/x", "youtube.com", False),
        ("https://cdn.evil.test/x.mp3", "evil.test", True),
        ("https://evil.test.example/x", "evil.test", False),
        ("https://bücher.example/x", "xn--bcher-kva.example", True),
        ("https://xn--bcher-kva.example/x", "bücher.example", True),
        ("https://BÜCHER.example/x", "Bücher.Example", True),
        ("https://1drv.ms/u/s!x", "onedrive.live.com", True),
        ("https://spotify.link/abc", "open.spotify.com", False),
        ("https://open.spotify.com/track/1", "spotify.link", True),
    ],
)
def test_blocked_domains_match_subdomains_and_aliases(link: str, domain: str, blocked: bool) -> None:
    host = validation.validate_link(link).host
    stored = validation.normalize_block(BlockKind.DOMAIN, domain)
    assert validation.domain_matches(host, stored) is blocked


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("YouTu.be", "youtu.be"),
        ("https://www.Example.com/some/path?q=1", "example.com"),
        ("m.youtube.com", "youtube.com"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("example.com:8080", "example.com"),
    ],
)
def test_blocklist_domains_are_stored_in_normal_form(typed: str, stored: str) -> None:
    assert validation.normalize_block(BlockKind.DOMAIN, typed) == stored


@pytest.mark.parametrize("bad", ["localhost", "no spaces.com", "https://", "a..b"])
def test_bad_blocklist_domains_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        validation.normalize_block(BlockKind.DOMAIN, bad)
