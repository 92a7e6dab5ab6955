"""Tiny valid audio files made in memory, so tests need no binary fixtures."""

from __future__ import annotations

import io
import struct
import wave


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A silent mono 16-bit WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def mp3_bytes(frames: int = 40) -> bytes:
    """MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz) of silence: about 26 ms each."""
    header = bytes([0xFF, 0xFB, 0x90, 0x64])
    frame_length = 144 * 128_000 // 44_100  # 417 bytes without padding
    return (header + b"\x00" * (frame_length - 4)) * frames


def flac_bytes(seconds: float = 2.0, rate: int = 44_100) -> bytes:
    """A FLAC stream header with a STREAMINFO block (enough for a parser to read the duration)."""
    total = int(seconds * rate)
    info = struct.pack(">HH", 4096, 4096) + (0).to_bytes(3, "big") + (0).to_bytes(3, "big")
    # 20 bits sample rate, 3 bits channels-1, 5 bits bits-per-sample-1, 36 bits total samples
    packed = (rate << 44) | (1 << 41) | (15 << 36) | total
    info += packed.to_bytes(8, "big") + b"\x00" * 16
    block_header = bytes([0x80]) + len(info).to_bytes(3, "big")  # last block, type 0 (STREAMINFO)
    return b"fLaC" + block_header + info
