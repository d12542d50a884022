"""The judgement corpus: real music from Debian's free packages, processed at seeded settings.

    .venv/bin/python bench/corpus.py [--from DIR] [--force]

builds ``.cache/corpus/`` (never committed) on a Debian 12/13 machine from nothing:
for each package in :data:`PIECES`, ``apt-get download`` (no root needed) in a
temporary folder, ``dpkg-deb --fsys-tarfile | tar -x`` of the one file wanted, then a
45 s excerpt from the stated offset, resampled to 48 kHz stereo, with 20 ms fades, and
lowered (never raised) so that its true peak is at most -1.5 dBTP: the decoded game
masters carry their encoders' overs, and the controls must start clean. The excerpts
are ``.cache/corpus/<key>.wav`` (24-bit) with ``manifest.json`` recording each
package's version. ``--from DIR`` takes already-extracted packages (``DIR/<package>/usr/...``)
instead of downloading them.

The processing families (:func:`process`) run in memory with pedalboard, at settings
drawn from one numpy Generator per piece and family (:func:`family_rng`), so a case
is replayed from its seed, piece and family alone:

- ``crush``: compressor (ratio 4-10, threshold 10-20 dB under the excerpt's RMS, attack
  0.5-10 ms), make-up gain to a drawn -17..-13 dBFS RMS, limiter (-6..-3 dB), output
  ceiling (-1..-0.1 dB);
- ``harsh``: a high shelf (2.5-6 kHz) or a bell (2.5-8 kHz) of +5..+10 dB, trimmed so
  the true peak does not exceed -1.5 dBTP (the highs, not the overs, are the point);
- ``combo``: the harsh EQ, then the crush chain;
- ``control``: ``gain`` (-8..+3 dB, capped by the headroom), ``gentle`` (ratio
  1.3-2.5, slow attack and release, at most 2 dB make-up), ``tonal`` (one low shelf,
  bell or high shelf within +-2 dB) and ``untouched``.

The pieces are finished game masters under the GPL; they stand here for "untouched
mixes". Their genre is the bench's own listening judgement, mapped to the profile a
user would pick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / ".cache" / "corpus"
FS = 48000
EXCERPT_S = 45.0
FADE_S = 0.02
EXCERPT_CEILING_DBTP = -1.5  # excerpts and controls stay under the -1 dBTP delivery ceiling
FAMILIES = ("crush", "harsh", "combo", "control")
CONTROL_KINDS = ("gain", "gentle", "tonal", "untouched")
# Variants per family and piece: 11 pieces x (3 + 3 + 2 + 4) = 132 cases.
VARIANTS = {"crush": 3, "harsh": 3, "combo": 2, "control": len(CONTROL_KINDS)}
DEFAULT_SEED = 17


@dataclass(frozen=True)
class Piece:
    """One excerpt of the corpus and where it comes from."""

    key: str
    packages: tuple[str, ...]  # the first one apt can download is used (Debian 12, then 13)
    tested_version: str  # the version the bench was developed on (Debian 12)
    member_glob: str  # path inside the package (a glob: the version folder may differ)
    licence: str  # from usr/share/doc/<package>/copyright
    genre: str
    profile: str  # presets/profiles/<profile>.toml a user would pick for it
    offset_s: float


_WESNOTH = "./usr/share/games/wesnoth/*/data/core/music/"
_WZ = "./usr/share/games/warzone2100/music/albums/"
_LINCITY = "./usr/share/games/lincity-ng/music/default/"
_XMOTO = "./usr/share/games/xmoto/Textures/Musics/"
_WES_PKGS = ("wesnoth-1.16-music", "wesnoth-1.18-music")
_WES_V = "1:1.16.9-1"

PIECES: tuple[Piece, ...] = (
    Piece("battle-epic", _WES_PKGS, _WES_V, _WESNOTH + "battle-epic.ogg", "GPL-2+",
          "orchestral", "classical", 20.0),
    Piece("elvish-theme", _WES_PKGS, _WES_V, _WESNOTH + "elvish-theme.ogg", "GPL-2+",
          "orchestral", "classical", 60.0),
    Piece("traveling-minstrels", _WES_PKGS, _WES_V, _WESNOTH + "traveling_minstrels.ogg",
          "GPL-2+", "acoustic folk", "acoustic", 40.0),
    Piece("wz-track1", ("warzone2100-music",), "4.3.3-3",
          _WZ + "original_soundtrack/track1.opus", "GPL-2+", "electronic", "electronic", 90.0),
    Piece("wz-track5", ("warzone2100-music",), "4.3.3-3",
          _WZ + "legacy_soundtrack/track5.opus", "GPL-2+", "rock", "rock", 90.0),
    Piece("lincity", ("lincity-ng-data",), "2.9~git20150314-5",
          _LINCITY + "01*lincity.ogg", "GPL-2+", "electronic", "electronic", 40.0),
    Piece("city-blues", ("lincity-ng-data",), "2.9~git20150314-5",
          _LINCITY + "02*City Blues.ogg", "GPL-2+", "blues", "jazz", 40.0),
    Piece("architectural", ("lincity-ng-data",), "2.9~git20150314-5",
          _LINCITY + "03*Architectural Contemplations.ogg", "GPL-2+", "ambient", "electronic",
          30.0),
    Piece("foxrun", ("xmoto-data",), "0.6.1+repack-9", _XMOTO + "foxrun.ogg", "GPL-2+",
          "rock", "rock", 20.0),
    Piece("madeira-stew", ("xmoto-data",), "0.6.1+repack-9", _XMOTO + "MadeiraStew.ogg",
          "GPL-2+", "funk", "pop", 15.0),
    Piece("frozen-mainzik", ("frozen-bubble-data",), "2.212-11",
          "./usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg", "GPL-2", "pop",
          "pop", 60.0),
)  # fmt: skip


def piece(key: str) -> Piece:
    """The piece called ``key``."""
    for p in PIECES:
        if p.key == key:
            return p
    raise KeyError(f"no piece {key!r} in the corpus")


def excerpt_path(p: Piece, corpus_dir: Path = CORPUS_DIR) -> Path:
    """Where the excerpt of ``p`` lives once built."""
    return corpus_dir / f"{p.key}.wav"


# -- building -----------------------------------------------------------------------------


def _say(message: str) -> None:
    print(f"corpus: {message}", file=sys.stderr, flush=True)


def _download(packages: Sequence[str], tmp: Path) -> tuple[Path, str]:
    """``apt-get download`` the first of ``packages`` apt knows; the .deb and its name."""
    for name in packages:
        proc = subprocess.run(
            ["apt-get", "download", name], cwd=tmp, capture_output=True, text=True
        )
        if proc.returncode == 0:
            debs = sorted(tmp.glob(f"{name}_*.deb"))
            if debs:
                return debs[0], name
    raise SystemExit(
        f"corpus: apt-get download {' or '.join(packages)} failed"
        " (is the Debian main archive in sources.list? try apt-get update)"
    )


def _extract_member(deb: Path, member_glob: str, dest: Path) -> Path:
    """Extract the one file matching ``member_glob`` from ``deb`` under ``dest``."""
    listing = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    names = (
        subprocess.run(["tar", "-t"], input=listing, capture_output=True, check=True)
        .stdout.decode()
        .splitlines()
    )
    import fnmatch

    hits = [n for n in names if fnmatch.fnmatch(n, member_glob)]
    if not hits:
        raise SystemExit(f"corpus: {deb.name} holds no {member_glob}")
    subprocess.run(
        ["tar", "-x", "-C", str(dest), hits[0]], input=listing, capture_output=True, check=True
    )
    return dest / hits[0]


def _version(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _find_extracted(p: Piece, root: Path) -> tuple[Path, str, str] | None:
    """The piece's file in an extracted tree ``root/<package>/``, its package and version."""
    for name in p.packages:
        hits = sorted((root / name).glob(p.member_glob.removeprefix("./")))
        if hits:
            return hits[0], name, p.tested_version
    return None


def true_peak_dbtp(audio: np.ndarray, sample_rate: int = FS) -> float:
    """True peak (dBTP) with earmark's own meter (BS.1770 4x oversampling)."""
    from earmark.meters import MeterBank

    bank = MeterBank(audio.shape[1], sample_rate, spectrum=False, history_s=1.0)
    bank.process(np.ascontiguousarray(audio, dtype=np.float32))
    tp = bank.readings().true_peak_dbtp
    return -200.0 if tp is None else float(tp)


def make_excerpt(source: Path, offset_s: float, seconds: float = EXCERPT_S) -> np.ndarray:
    """``seconds`` of ``source`` from ``offset_s``: 48 kHz stereo float32, faded, peak-safe."""
    from pedalboard.io import StreamResampler

    info = sf.info(str(source))
    start = int(round(offset_s * info.samplerate))
    frames = int(round(seconds * info.samplerate))
    if start + frames > info.frames:
        raise SystemExit(f"corpus: {source.name} is shorter than {offset_s + seconds:.0f} s")
    x, rate = sf.read(str(source), start=start, frames=frames, dtype="float32", always_2d=True)
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    x = x[:, :2]
    if rate != FS:
        r = StreamResampler(rate, FS, 2)
        y = np.concatenate([r.process(np.ascontiguousarray(x.T)), r.process(None)], axis=1)
        x = np.ascontiguousarray(y.T)
    n = int(round(seconds * FS))
    x = x[:n].astype(np.float32)
    fade = int(FADE_S * FS)
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))).astype(np.float32)
    x[:fade] *= ramp[:, None]
    x[-fade:] *= ramp[::-1, None]
    tp = true_peak_dbtp(x)
    if tp > EXCERPT_CEILING_DBTP:
        x *= np.float32(10.0 ** ((EXCERPT_CEILING_DBTP - tp) / 20.0))
    return x


def build(corpus_dir: Path = CORPUS_DIR, from_dir: Path | None = None, force: bool = False) -> dict:
    """Build every excerpt missing from ``corpus_dir``; returns the manifest."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = corpus_dir / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists() and not force:
        manifest = json.loads(manifest_path.read_text())
    with tempfile.TemporaryDirectory(prefix="earmark-corpus-") as tmp_name:
        tmp = Path(tmp_name)
        debs: dict[tuple[str, ...], tuple[Path, str, str]] = {}
        for p in PIECES:
            out = excerpt_path(p, corpus_dir)
            if out.exists() and p.key in manifest and not force:
                continue
            found = _find_extracted(p, from_dir) if from_dir is not None else None
            if found is None:
                if p.packages not in debs:
                    _say(f"apt-get download {p.packages[0]} ...")
                    deb, name = _download(p.packages, tmp)
                    debs[p.packages] = (deb, name, _version(deb))
                deb, name, version = debs[p.packages]
                (tmp / "x").mkdir(exist_ok=True)
                source = _extract_member(deb, p.member_glob, tmp / "x")
            else:
                source, name, version = found
            x = make_excerpt(source, p.offset_s)
            sf.write(str(out), x, FS, subtype="PCM_24")
            manifest[p.key] = {
                "package": name,
                "version": version,
                "path": "/usr/" + str(source).split("/usr/", 1)[-1],
                "licence": p.licence,
                "genre": p.genre,
                "profile": p.profile,
                "offset_s": p.offset_s,
                "seconds": EXCERPT_S,
            }
            _say(f"{p.key}: {name} {version}, {EXCERPT_S:.0f} s from {p.offset_s:.0f} s")
            if found is None:
                shutil.rmtree(tmp / "x", ignore_errors=True)
    for p in PIECES:  # what the bench says of a piece follows PIECES, not an older build
        if p.key in manifest:
            manifest[p.key].update(licence=p.licence, genre=p.genre, profile=p.profile)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_excerpt(p: Piece, corpus_dir: Path = CORPUS_DIR) -> np.ndarray:
    """The excerpt of ``p`` as float32 (frames, 2)."""
    x, rate = sf.read(str(excerpt_path(p, corpus_dir)), dtype="float32", always_2d=True)
    if rate != FS:
        raise SystemExit(f"corpus: {p.key} is {rate} Hz, not {FS}: rebuild with --force")
    return x


# -- processing ------------------------------------------------------------------------------


def family_seed(seed: int, piece_index: int, family: str) -> list[int]:
    """The entropy of one piece's and family's Generator (printed so a case can be replayed)."""
    return [int(seed), int(piece_index), FAMILIES.index(family)]


def family_rng(seed: int, piece_index: int, family: str) -> np.random.Generator:
    """One Generator per piece and family: its variants are drawn from it in order."""
    return np.random.default_rng(family_seed(seed, piece_index, family))


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level over all channels, dB re full scale (the compressor thresholds' reference)."""
    ms = float(np.mean(np.square(audio, dtype=np.float64)))
    return 10.0 * np.log10(max(ms, 1e-20))


def _harsh_eq(rng: np.random.Generator) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {
            "kind": "high_shelf",
            "freq_hz": float(rng.uniform(2500.0, 6000.0)),
            "gain_db": float(rng.uniform(5.0, 10.0)),
            "q": 0.707,
        }
    return {
        "kind": "bell",
        "freq_hz": float(rng.uniform(2500.0, 8000.0)),
        "gain_db": float(rng.uniform(5.0, 10.0)),
        "q": float(rng.uniform(0.7, 1.4)),
    }


def _crush(rng: np.random.Generator, rms_db: float) -> dict[str, Any]:
    # The make-up gain is not drawn: it brings the compressed RMS to a drawn level
    # (process() measures it), so that every variant drives the limiter hard, as a
    # loudness-war master does, whatever the piece's own level.
    return {
        "threshold_db": float(rms_db - rng.uniform(10.0, 20.0)),
        "ratio": float(rng.uniform(4.0, 10.0)),
        "attack_ms": float(rng.uniform(0.5, 10.0)),
        "release_ms": float(rng.uniform(40.0, 200.0)),
        "target_rms_dbfs": float(rng.uniform(-17.0, -13.0)),
        "limiter_threshold_db": float(rng.uniform(-6.0, -3.0)),
        "limiter_release_ms": float(rng.uniform(30.0, 200.0)),
        "ceiling_db": float(rng.uniform(-1.0, -0.1)),
    }


def _tonal(rng: np.random.Generator) -> dict[str, Any]:
    # One move, so the response stays within +-2 dB everywhere (two overlapping
    # moves of 2 dB would add up to 4).
    move = ("low_shelf", "bell", "high_shelf")[int(rng.integers(3))]
    freq_hz = {
        "low_shelf": rng.uniform(80.0, 250.0),
        "bell": rng.uniform(300.0, 3000.0),
        "high_shelf": rng.uniform(3000.0, 10000.0),
    }[move]
    return {
        "kind": "tonal",
        "move": move,
        "freq_hz": float(freq_hz),
        "gain_db": float(rng.uniform(-2.0, 2.0)),
        "q": float(rng.uniform(0.5, 1.5)) if move == "bell" else 0.707,
    }


def draw_settings(
    seed: int, piece_index: int, family: str, audio: np.ndarray
) -> list[dict[str, Any]]:
    """Every variant's settings of one piece and family, drawn in order from its Generator.

    Thresholds are drawn relative to the excerpt's RMS (``audio``), so "low" means the
    same thing on a quiet orchestral piece and a loud rock one.
    """
    rng = family_rng(seed, piece_index, family)
    rms_db = rms_dbfs(audio)
    out: list[dict[str, Any]] = []
    if family == "crush":
        out = [{"crush": _crush(rng, rms_db)} for _ in range(VARIANTS["crush"])]
    elif family == "harsh":
        out = [{"eq": _harsh_eq(rng)} for _ in range(VARIANTS["harsh"])]
    elif family == "combo":
        out = [{"eq": _harsh_eq(rng), "crush": _crush(rng, rms_db)} for _ in range(2)]
    elif family == "control":
        out = [
            {"kind": "gain", "gain_db": float(rng.uniform(-8.0, 3.0))},
            {
                "kind": "gentle",
                "threshold_db": float(rms_db - rng.uniform(2.0, 6.0)),
                "ratio": float(rng.uniform(1.3, 2.5)),
                "attack_ms": float(rng.uniform(20.0, 60.0)),
                "release_ms": float(rng.uniform(200.0, 600.0)),
                "makeup_db": float(rng.uniform(0.0, 2.0)),
            },
            _tonal(rng),
            {"kind": "untouched"},
        ]
    else:
        raise ValueError(f"no family {family!r}; one of {', '.join(FAMILIES)}")
    return out


def _eq_plugin(eq: dict[str, Any]) -> Any:
    import pedalboard as pb

    if eq["kind"] == "high_shelf":
        return pb.HighShelfFilter(eq["freq_hz"], eq["gain_db"], eq["q"])
    return pb.PeakFilter(eq["freq_hz"], eq["gain_db"], eq["q"])


def _crush_chain(c: dict[str, Any], audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Compressor, make-up to the drawn RMS, limiter (JUCE's: it adds -threshold of gain
    and clips at 0 dBFS), output ceiling; the output and the make-up applied (dB)."""
    import pedalboard as pb

    comp = _run(
        [pb.Compressor(c["threshold_db"], c["ratio"], c["attack_ms"], c["release_ms"])], audio
    )
    makeup_db = c["target_rms_dbfs"] - rms_dbfs(comp)
    rest = [
        pb.Gain(makeup_db),
        pb.Limiter(c["limiter_threshold_db"], c["limiter_release_ms"]),
        pb.Gain(c["ceiling_db"]),
    ]
    return _run(rest, comp), makeup_db


def _run(plugins: list[Any], audio: np.ndarray) -> np.ndarray:
    import pedalboard as pb

    y = pb.Pedalboard(plugins)(np.ascontiguousarray(audio.T, dtype=np.float32), FS)
    return np.ascontiguousarray(y.T, dtype=np.float32)


def _peak_safe(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower ``audio`` (never raise it) to a true peak of at most -1.5 dBTP; the trim in dB."""
    tp = true_peak_dbtp(audio)
    if tp <= EXCERPT_CEILING_DBTP:
        return audio, 0.0
    trim_db = EXCERPT_CEILING_DBTP - tp
    return audio * np.float32(10.0 ** (trim_db / 20.0)), trim_db


def process(family: str, settings: dict[str, Any], audio: np.ndarray) -> tuple[np.ndarray, float]:
    """``audio`` processed as ``settings`` say.

    Returns the output and the one gain derived from the audio rather than drawn (dB):
    the crush chain's make-up, or the trim that keeps a harsh or control case under
    -1.5 dBTP (for a gain control, what the headroom took off the drawn gain).
    """
    import pedalboard as pb

    if family == "harsh":
        return _peak_safe(_run([_eq_plugin(settings["eq"])], audio))
    if family == "crush":
        return _crush_chain(settings["crush"], audio)
    if family == "combo":
        return _crush_chain(settings["crush"], _run([_eq_plugin(settings["eq"])], audio))
    kind = settings["kind"]
    if kind == "untouched":
        return audio.copy(), 0.0
    if kind == "gain":
        # Capped by the headroom: a gain that drives the master into overs is not a control.
        headroom_db = EXCERPT_CEILING_DBTP - true_peak_dbtp(audio)
        applied = min(settings["gain_db"], headroom_db)
        return _run([pb.Gain(applied)], audio), applied - settings["gain_db"]
    if kind == "gentle":
        plugins = [
            pb.Compressor(
                settings["threshold_db"],
                settings["ratio"],
                settings["attack_ms"],
                settings["release_ms"],
            ),
            pb.Gain(settings["makeup_db"]),
        ]
        return _peak_safe(_run(plugins, audio))
    if kind == "tonal":
        cls = {
            "low_shelf": pb.LowShelfFilter,
            "bell": pb.PeakFilter,
            "high_shelf": pb.HighShelfFilter,
        }[settings["move"]]
        return _peak_safe(
            _run([cls(settings["freq_hz"], settings["gain_db"], settings["q"])], audio)
        )
    raise ValueError(f"no control {kind!r}")


def describe(family: str, settings: dict[str, Any]) -> str:
    """The settings on one line (for the replay listing)."""
    parts: list[str] = []
    eq = settings.get("eq")
    if eq:
        q = f" Q{eq['q']:.2f}" if eq["kind"] == "bell" else ""
        parts.append(f"{eq['kind']} {eq['gain_db']:+.1f} dB at {eq['freq_hz']:.0f} Hz{q}")
    c = settings.get("crush")
    if c:
        parts.append(
            f"comp {c['ratio']:.1f}:1 at {c['threshold_db']:.1f} dB"
            f" {c['attack_ms']:.1f}/{c['release_ms']:.0f} ms, make-up to"
            f" {c['target_rms_dbfs']:.1f} dBFS RMS, limiter {c['limiter_threshold_db']:.1f} dB,"
            f" ceiling {c['ceiling_db']:.1f} dB"
        )
    if family == "control":
        kind = settings["kind"]
        if kind == "gain":
            parts.append(f"gain {settings['gain_db']:+.1f} dB")
        elif kind == "gentle":
            parts.append(
                f"comp {settings['ratio']:.2f}:1 at {settings['threshold_db']:.1f} dB"
                f" {settings['attack_ms']:.0f}/{settings['release_ms']:.0f} ms,"
                f" +{settings['makeup_db']:.1f} dB"
            )
        elif kind == "tonal":
            q = f" Q{settings['q']:.2f}" if settings["move"] == "bell" else ""
            parts.append(
                f"{settings['move'].replace('_', ' ')} {settings['gain_db']:+.1f} dB"
                f" at {settings['freq_hz']:.0f} Hz{q}"
            )
        else:
            parts.append("untouched")
    return "; ".join(parts)


def audio_digest(audio: np.ndarray) -> str:
    """SHA-256 of the float32 samples (a processed case's fingerprint)."""
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    """Build the corpus (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="already-extracted packages (DIR/<package>/usr/...)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild every excerpt")
    parser.add_argument("--dir", type=Path, default=CORPUS_DIR, help="where the corpus goes")
    args = parser.parse_args(argv)  # fmt: skip
    if args.from_dir is None and shutil.which("apt-get") is None:
        _say("apt-get is missing: this needs a Debian machine, or --from DIR")
        return 3
    manifest = build(args.dir, args.from_dir, args.force)
    for key, m in manifest.items():
        print(f"{key:20s} {m['package']} {m['version']}  {m['genre']} -> {m['profile']}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    sys.exit(main())
