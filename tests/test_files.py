"""earmark.engine.files: header facts, block reading, and one clear error per bad file.

Every file is written here with soundfile (libsndfile); damaged files are made
by cutting or patching valid ones, so each test knows its answer.
"""

from __future__ import annotations

import os
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from earmark.engine.files import AudioFileError, iter_blocks, open_audio

SR = 48000


def sine(seconds: float, sample_rate: int = SR, channels: int = 2, freq_hz: float = 1000.0,
         peak_dbfs: float = -23.0) -> np.ndarray:  # fmt: skip
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    x = 10.0 ** (peak_dbfs / 20.0) * np.sin(2.0 * np.pi * freq_hz * t)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def can_write_mp3() -> bool:
    return "MP3" in sf.available_formats() and "MPEG_LAYER_III" in sf.available_subtypes("MP3")


def cut_in_half(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# -- header facts and reading ----------------------------------------------------------

FORMATS = [
    ("WAV", "PCM_24", "wav"),
    ("FLAC", "PCM_16", "flac"),
    ("OGG", "VORBIS", "ogg"),
    ("AIFF", "PCM_16", "aiff"),
    ("WAV", "FLOAT", "f32.wav"),
    pytest.param(
        "MP3",
        "MPEG_LAYER_III",
        "mp3",
        marks=pytest.mark.skipif(not can_write_mp3(), reason="libsndfile without MP3 encoding"),
    ),
]


@pytest.mark.parametrize(("fmt", "subtype", "ext"), FORMATS)
def test_open_audio_reports_rate_channels_frames_format(tmp_path, fmt, subtype, ext):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, sine(2.0, 44100, 2), 44100, format=fmt, subtype=subtype)
    info = open_audio(path)
    assert (info.path, info.sample_rate, info.channels) == (str(path), 44100, 2)
    assert (info.format, info.subtype) == (fmt, subtype)
    assert info.frames == 88200
    assert info.duration_s == pytest.approx(2.0)
    assert info.warnings == ()


@pytest.mark.parametrize(("fmt", "subtype", "ext"), FORMATS)
def test_iter_blocks_yields_every_frame_in_fixed_blocks(tmp_path, fmt, subtype, ext):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, sine(1.0, SR, 2), SR, format=fmt, subtype=subtype)
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    blocks = list(iter_blocks(path, block_frames=10000))
    assert [b.shape for b in blocks] == [(10000, 2)] * 4 + [(8000, 2)]
    assert all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), expected)


def test_iter_blocks_float64_mono_keeps_two_dimensions(tmp_path):
    path = tmp_path / "mono.wav"
    x = sine(0.5, SR, 1)
    sf.write(path, x, SR, subtype="FLOAT")
    blocks = list(iter_blocks(path, block_frames=4096, dtype="float64"))
    assert all(b.ndim == 2 and b.shape[1] == 1 and b.dtype == np.float64 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks)[:, 0], x[:, 0].astype(np.float64))


def test_iter_blocks_memory_does_not_grow_with_file_length(tmp_path):
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", SR, 2, subtype="PCM_16") as f:
        for _ in range(60):  # 60 s, 23 MB of float32 once decoded
            f.write(sine(1.0))
    tracemalloc.start()
    try:
        frames = sum(b.shape[0] for b in iter_blocks(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == 60 * SR
    assert peak < 4 * 2**20  # a few 512 KiB blocks, never the whole file


# -- unreadable files: AudioFileError naming the file and the cause ---------------------


def assert_file_error(path, *words: str) -> AudioFileError:
    with pytest.raises(AudioFileError) as caught:
        open_audio(path)
        for _ in iter_blocks(path):
            pass
    err = caught.value
    assert isinstance(err, ValueError)
    message = str(err)
    assert message.startswith(f"{os.fspath(path)}: ")
    assert "\n" not in message
    for word in words:
        assert word in err.cause
    return err


def test_missing_file(tmp_path):
    assert_file_error(tmp_path / "nope.wav", "no such file")


def test_directory(tmp_path):
    folder = tmp_path / "album.wav"
    folder.mkdir()
    assert_file_error(folder, "directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert_file_error(path, "empty", "0 bytes")


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("master notes: more air, less 3k\n" * 20)
    err = assert_file_error(path, "not an audio file", "libsndfile")
    assert "Format not recognised" in err.cause


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_permissions(tmp_path):
    path = tmp_path / "locked.wav"
    sf.write(path, sine(0.5), SR)
    path.chmod(0)
    assert_file_error(path, "permission denied")


def test_truncated_wav_names_declared_and_readable_frames(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, sine(10.0), SR, subtype="PCM_16")
    cut_in_half(path)
    err = assert_file_error(path, "truncated")
    readable = (os.path.getsize(path) - 44) // 4
    assert err.cause == (
        f"truncated: the header declares {10 * SR} frames but only {readable} could be read"
    )


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [
        ("AIFF", "PCM_16", "aiff"),
        ("WAV", "FLOAT", "wav"),
        ("WAVEX", "PCM_24", "wav"),
        ("RF64", "PCM_24", "rf64"),
        ("W64", "FLOAT", "w64"),
        ("AU", "PCM_16", "au"),
        ("FLAC", "PCM_16", "flac"),
        ("OGG", "VORBIS", "ogg"),
    ],
)
def test_truncated_files_of_every_container_are_reported(tmp_path, fmt, subtype, ext):
    path = tmp_path / f"cut.{ext}"
    sf.write(path, sine(4.0), SR, format=fmt, subtype=subtype)
    cut_in_half(path)
    assert_file_error(path, "truncated")


@pytest.mark.skipif(not can_write_mp3(), reason="libsndfile without MP3 encoding")
def test_truncated_mp3_is_reported_after_decoding(tmp_path):
    path = tmp_path / "cut.mp3"
    sf.write(path, sine(4.0), SR, format="MP3", subtype="MPEG_LAYER_III")
    cut_in_half(path)
    assert open_audio(path).frames == 4 * SR  # the Xing header still promises 4 s
    with pytest.raises(AudioFileError, match=r"truncated: the header declares 192000 frames"):
        for _ in iter_blocks(path):
            pass


@pytest.mark.skipif(not can_write_mp3(), reason="libsndfile without MP3 encoding")
def test_mp3_without_length_header_has_unknown_frames_and_a_warning(tmp_path):
    path = tmp_path / "stream.mp3"
    sf.write(path, sine(2.0), SR, format="MP3", subtype="MPEG_LAYER_III")
    data = path.read_bytes()
    assert b"Xing" in data[:200] or b"Info" in data[:200]
    # Drop the first MPEG frame (the Xing/Info frame) as a stream rip would.
    header = struct.unpack(">I", data[:4])[0]
    bitrate_kbps = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)[
        (header >> 12) & 0xF
    ]
    rate = (44100, 48000, 32000)[(header >> 10) & 0x3]
    first_frame = 144 * bitrate_kbps * 1000 // rate + ((header >> 9) & 1)
    path.write_bytes(data[first_frame:])
    info = open_audio(path)
    assert info.frames is None
    assert any("Xing/Info/VBRI" in w for w in info.warnings)
    assert sum(b.shape[0] for b in iter_blocks(path)) > 0


@pytest.mark.parametrize("rate", [4000, 768000])
def test_sample_rate_outside_8k_to_384k(tmp_path, rate):
    path = tmp_path / f"sr{rate}.wav"
    sf.write(path, sine(0.1, rate), rate)
    assert_file_error(path, f"sample rate {rate} Hz is outside 8000-384000 Hz")


def test_zero_channel_wav_is_refused(tmp_path):
    path = tmp_path / "nochannels.wav"
    sf.write(path, sine(0.1), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[22:24] = struct.pack("<H", 0)  # fmt chunk: channel count
    path.write_bytes(bytes(data))
    assert_file_error(path)


# -- complete files that merely look odd are not truncated --------------------------------


def wav_bytes(tmp_path, frames: int = 48001) -> bytearray:
    path = tmp_path / "src.wav"
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (frames, 1)).astype(np.float32)
    sf.write(path, noise, SR, subtype="PCM_U8")  # odd data size: a pad byte follows
    return bytearray(path.read_bytes())


def test_chunk_after_data_is_not_truncation(tmp_path):
    data = wav_bytes(tmp_path)
    data += b"LIST" + struct.pack("<I", 4) + b"INFO"
    data[4:8] = struct.pack("<I", len(data) - 8)
    path = tmp_path / "list.wav"
    path.write_bytes(bytes(data))
    assert open_audio(path).frames == 48001
    assert sum(b.shape[0] for b in iter_blocks(path)) == 48001


def test_riff_size_off_by_eight_is_not_truncation(tmp_path):
    data = wav_bytes(tmp_path)
    data[4:8] = struct.pack("<I", len(data))  # writer bug: file size instead of size - 8
    path = tmp_path / "riff.wav"
    path.write_bytes(bytes(data))
    assert sum(b.shape[0] for b in iter_blocks(path)) == 48001


def test_streaming_placeholder_sizes_are_not_truncation(tmp_path):
    data = wav_bytes(tmp_path, frames=48000)
    at = data.find(b"data")
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "stream.wav"
    path.write_bytes(bytes(data))
    assert sum(b.shape[0] for b in iter_blocks(path)) == 48000


def test_block_frames_and_dtype_are_checked(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(0.1), SR)
    with pytest.raises(ValueError, match="block_frames"):
        next(iter_blocks(path, block_frames=0))
    with pytest.raises(ValueError, match="dtype"):
        next(iter_blocks(path, dtype="int16"))
