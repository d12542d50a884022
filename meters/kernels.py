"""numba kernels of the MeterBank: one streaming pass, plain arrays in and out.

One concept: the MeterBank's single pass. The kernels call one another inside one
compiled ``process_block`` (numba inlines and caches them together), so they live in
one module.

Everything here is ``@njit(cache=True, nogil=True)`` and works on arrays that
:class:`earmark.meters.bank.MeterBank` allocated once; nothing allocates, locks
or calls back into Python, so ``process_block`` can run in an audio callback.

Time is cut into *sub-blocks* of ``sub_len`` samples (100 ms, libebur128's
rounding). Every per-sample accumulation runs in sample order straight into
the running state and every periodic event (sub-block end, FFT hop, 3 s DR
block) fires at a fixed sample count, so any way of cutting the input into
blocks gives bit-identical readings.

Loudness gating keeps no list of blocks: each 400 ms block energy (and each
3 s short-term energy for LRA) goes into a 0.01 LU histogram that holds the
count and the energy sum per bin, so the gated mean is exact except for blocks
within 0.01 LU of the relative gate, and memory is constant for any duration.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from . import fft, jitcache
from .fft import fft_stage


def _cache_probe() -> None:
    """Locates this module's numba cache for ``jitcache.drop_stale``."""


# The kernels compile in fft.py's; numba's cache alone would not see it change.
jitcache.drop_stale(_cache_probe, [fft.__file__])

# Loudness histograms: 0.01 LU bins from -70 to +30 LUFS.
HIST_MIN_LUFS = -70.0
HIST_BINS_PER_LU = 100
HIST_BINS = 100 * HIST_BINS_PER_LU
# PSR distribution per short-term loudness: 1 LU rows x 0.1 dB columns (0-40 dB).
PSR_ROWS = 100
PSR_COLS = 400
PSR_BIN_DB = 0.1
# DR block RMS histogram: 0.01 dB bins from -120 to +10 dB.
DR_MIN_DB = -120.0
DR_BINS = 13000

SUB_PER_MOMENTARY = 4  # 400 ms
SUB_PER_SHORT_TERM = 30  # 3 s
SUB_PER_DR_BLOCK = 30  # 3 s (TT DR meter)

LOUDNESS_OFFSET = -0.691  # BS.1770-4 eq. 2
INTEGRATED_RELATIVE_LU = -10.0  # BS.1770-4 relative gate
LRA_RELATIVE_LU = -20.0  # EBU Tech 3342 relative gate

# Indices into the int64 counter array ``cnt``.
C_POS_IN_SUB = 0  # samples into the current sub-block
C_SUBS = 1  # completed sub-blocks
C_TP_POS = 2  # true-peak ring write position
C_FFT_POS = 3  # samples written into the FFT input ring since the last hop
C_FFT_FILL = 4  # which of the two FFT buffers the incoming samples fill
C_FFT_FRAMES = 5  # FFT frames averaged into the long-term spectrum
C_NONFINITE = 6  # NaN/Inf samples replaced by zero
C_FRAMES = 7  # total frames processed
C_DR_BLOCKS = 8  # completed DR blocks
C_ST_BLOCKS = 9  # short-term values computed
C_HIST_POS = 10  # history ring write position
C_HIST_LEN = 11  # valid history points
C_CLIP_SUB = 12  # clipped samples (full-scale runs) in the current sub-block
C_CLIPPED = 13  # clipped samples since the start
C_HIST_ROWS = 14  # history rows written since the start (bumped after a row is complete)
C_FFT_STEP = 15  # next step of the pending spectrum frame's transform (-1: none pending)
C_FFT_SPACING = 16  # samples between two steps of a pending transform
C_COUNT = 17

# Rows of the 10 Hz ``history`` array (one column per 100 ms sub-block).
H_MOMENTARY = 0  # LUFS
H_SHORT_TERM = 1  # LUFS
H_TP_3S = 2  # dBTP, max over the short-term window
H_PSR = 3  # dB
H_TP = 4  # dBTP, this sub-block, max over channels
H_SAMPLE_PEAK = 5  # dBFS, this sub-block, max over channels
H_CLIPPED = 6  # samples in full-scale runs in this sub-block, all channels
H_ROWS = 7

# Clipping: a run of CLIP_RUN or more consecutive samples at or beyond full scale on
# one channel, all of one sign (a flat top). 32767/32768 is the largest positive
# 16-bit code. Three consecutive full-scale samples is the usual "over" of digital
# peak meters (a convention, not a standard; not in docs/reference.md): one or two can be
# a legitimate peak landing on full scale, three in a row are a flat top.
CLIP_LEVEL = 32767.0 / 32768.0
CLIP_RUN = 3

# Indices into the float64 scalar array ``sc``.
S_MAX_M = 0  # max momentary energy
S_MAX_S = 1  # max short-term energy
S_CUR_M = 2  # latest momentary energy (-1 = undefined)
S_CUR_S = 3  # latest short-term energy (-1 = undefined)
S_CUR_TP3 = 4  # max true peak over the latest 3 s (linear)
S_CUR_CORR = 5  # latest 400 ms correlation (NaN = undefined)
S_RECENT_TP = 6  # max true peak since the last read (linear)
S_ST_LL = 7  # programme stereo sums
S_ST_RR = 8
S_ST_LR = 9
S_SUB_LL = 10  # current sub-block stereo sums
S_SUB_RR = 11
S_SUB_LR = 12
S_CUR_PSR = 13  # latest PSR, dB (NaN = undefined)
S_COUNT = 14


@nb.njit(cache=True, nogil=True, inline="always")
def _energy_to_lufs(e: float) -> float:
    return LOUDNESS_OFFSET + 10.0 * math.log10(e)


@nb.njit(cache=True, nogil=True, inline="always")
def _lufs_bin(lufs: float) -> int:
    b = int(math.floor((lufs - HIST_MIN_LUFS) * HIST_BINS_PER_LU))
    if b >= HIST_BINS:
        b = HIST_BINS - 1
    return b


@nb.njit(cache=True, nogil=True, inline="always")
def _refine(prev2: float, prev1: float, cur: float) -> float:
    """Parabolic peak through three consecutive oversampled magnitudes (prev1 is the max)."""
    d = 2.0 * prev1 - prev2 - cur
    if d > 0.0:
        return prev1 + (prev2 - cur) * (prev2 - cur) / (8.0 * d)
    return prev1


@nb.njit(cache=True, nogil=True)
def _channel_segment(
    block: np.ndarray,
    c: int,
    start: int,
    stop: int,
    kw: np.ndarray,
    kstate: np.ndarray,
    acc: np.ndarray,
    tp_lin: np.ndarray,
    taps: int,
    clip_run: np.ndarray,
    cnt: np.ndarray,
) -> int:
    """Sanitise, peak, power, clipping and K-weighted energy of one channel over one segment.

    Also copies the sanitised samples after the true-peak history in ``tp_lin`` and
    counts samples in full-scale runs (``CLIP_RUN`` or longer) into ``cnt[C_CLIP_SUB]``.
    Returns the number of non-finite samples replaced by zero.
    """
    b00 = kw[0, 0]
    b01 = kw[0, 1]
    b02 = kw[0, 2]
    a01 = kw[0, 3]
    a02 = kw[0, 4]
    b10 = kw[1, 0]
    b11 = kw[1, 1]
    b12 = kw[1, 2]
    a11 = kw[1, 3]
    a12 = kw[1, 4]
    z0 = kstate[c, 0]
    z1 = kstate[c, 1]
    z2 = kstate[c, 2]
    z3 = kstate[c, 3]
    e = acc[0, c]
    p = acc[1, c]
    pk = acc[2, c]
    run = clip_run[c]
    clipped = 0
    nonfinite = 0
    out = taps - 1 - start
    for n in range(start, stop):
        x = float(block[n, c])
        if not math.isfinite(x):
            x = 0.0
            nonfinite += 1
        tp_lin[c, out + n] = x
        ax = abs(x)
        if ax > pk:
            pk = ax
        if ax >= CLIP_LEVEL:
            # A flat top: same-sign full-scale samples (signed run length).
            run = (run + 1 if run > 0 else 1) if x > 0.0 else (run - 1 if run < 0 else -1)
            length = abs(run)
            if length == CLIP_RUN:
                clipped += CLIP_RUN
            elif length > CLIP_RUN:
                clipped += 1
        else:
            run = 0
        p += x * x
        # K-weighting: two biquads, transposed direct form II.
        y = b00 * x + z0
        z0 = b01 * x - a01 * y + z1
        z1 = b02 * x - a02 * y
        w = b10 * y + z2
        z2 = b11 * y - a11 * w + z3
        z3 = b12 * y - a12 * w
        e += w * w
    # Flush denormals out of the recursive state.
    kstate[c, 0] = z0 if abs(z0) > 1e-30 else 0.0
    kstate[c, 1] = z1 if abs(z1) > 1e-30 else 0.0
    kstate[c, 2] = z2 if abs(z2) > 1e-30 else 0.0
    kstate[c, 3] = z3 if abs(z3) > 1e-30 else 0.0
    acc[0, c] = e
    acc[1, c] = p
    acc[2, c] = pk
    clip_run[c] = run
    cnt[C_CLIP_SUB] += clipped
    return nonfinite


@nb.njit(cache=True, nogil=True, fastmath=True)
def _abs_max(a: np.ndarray, row: int, lo: int, hi: int) -> float:
    # max is exact in any order, so letting LLVM vectorise it is safe.
    m = np.float32(0.0)
    for i in range(lo, hi):
        v = abs(a[row, i])
        if v > m:
            m = v
    return m


@nb.njit(cache=True, nogil=True)
def _true_peak_segment(
    g: np.ndarray,  # (factor-1, taps) interpolation phases
    lin: np.ndarray,  # (channels, taps-1+sub_len): history then this segment
    over: np.ndarray,  # (factor-1, sub_len) work
    prev: np.ndarray,  # (channels, 2) last two magnitudes of the oversampled stream
    c: int,
    seg: int,
    taps: int,
) -> float:
    """Highest true peak of one channel's segment (oversampled, parabola-refined).

    Output n is the instant m = (newest sample - taps/2): phase 0 is x[m], phases
    1.. are interpolated between x[m] and x[m+1] from the window lin[n:n+taps].
    """
    n_phase = g.shape[0]
    # Tap-outer convolution: each output still sums its taps in order (so the
    # result does not depend on segment length) and the inner loop vectorises.
    for p in range(n_phase):
        for n in range(seg):
            over[p, n] = 0.0
        for k in range(taps):
            gk = g[p, k]
            for n in range(seg):
                over[p, n] += gk * lin[c, n + k]
    centre = taps // 2 - 1
    top = _abs_max(lin, c, centre, centre + seg)
    for p in range(n_phase):
        m = _abs_max(over, p, 0, seg)
        if m > top:
            top = m
    # A parabola lifts a local maximum by at most 1/8 of it: only points within
    # that of the segment maximum can set the refined peak.
    thresh = top / 1.125
    best = 0.0
    q2 = prev[c, 0]
    q1 = prev[c, 1]
    for n in range(seg):
        for p in range(n_phase + 1):
            v = abs(float(lin[c, centre + n])) if p == 0 else abs(float(over[p - 1, n]))
            if q1 >= thresh and q1 >= q2 and q1 >= v:
                r = _refine(q2, q1, v)
                if r > best:
                    best = r
            q2 = q1
            q1 = v
    prev[c, 0] = q2
    prev[c, 1] = q1
    if top > best:
        best = top
    return best


@nb.njit(cache=True, nogil=True)
def process_block(
    block: np.ndarray,  # (frames, channels) float32/float64
    kw: np.ndarray,  # (2, 5) K-weighting biquads
    gain: np.ndarray,  # (channels,) BS.1770 weights
    kstate: np.ndarray,  # (channels, 4) biquad states
    sub_len: int,
    acc: np.ndarray,  # (4, channels): K-energy, power, sample peak, true peak of the sub-block
    tot: np.ndarray,  # (3, channels): programme power sum, sample peak, true peak
    recent_tp: np.ndarray,  # (channels,) true peak since last read
    tp_taps: np.ndarray,  # (factor-1, taps) float32
    tp_lin: np.ndarray,  # (channels, taps-1+sub_len) float32: history + segment
    tp_over: np.ndarray,  # (factor-1, sub_len) float32 interpolated values
    tp_prev: np.ndarray,  # (channels, 2) last two oversampled magnitudes
    do_tp: bool,
    ring_e: np.ndarray,  # (30,) weighted K-energy per sub-block
    ring_tp: np.ndarray,  # (30,) true peak per sub-block (max over channels)
    ring_st: np.ndarray,  # (4, 3) stereo sums per sub-block
    hist_i: np.ndarray,  # (2, HIST_BINS) counts / energy sums, 400 ms blocks
    hist_s: np.ndarray,  # (2, HIST_BINS) counts / energy sums, 3 s blocks
    psr_hist: np.ndarray,  # (PSR_ROWS, PSR_COLS) counts
    psr_min: np.ndarray,  # (PSR_ROWS,) exact min PSR per short-term-loudness row
    corr_min: np.ndarray,  # (100,) min 400 ms correlation per momentary-loudness row
    dr_acc: np.ndarray,  # (2, channels): power sum, peak of the current 3 s block
    dr_hist: np.ndarray,  # (channels, 2, DR_BINS) counts / rms^2 sums
    dr_peaks: np.ndarray,  # (channels, 2) two highest block peaks
    history: np.ndarray,  # (H_ROWS, H) 10 Hz curves, see H_*
    chan_hist: np.ndarray,  # (H, channels, 2) mean square and sample peak per sub-block
    spec_hist: np.ndarray,  # (H, bands) short-term band power at each sub-block end
    clip_run: np.ndarray,  # (channels,) int64 current full-scale run length
    fft_hop: int,  # samples between spectrum frames (= n_fft: frames back to back)
    fft_work: np.ndarray,  # (2, n_fft) complex128: one buffer fills, the other transforms
    fft_rev: np.ndarray,
    fft_tw: np.ndarray,
    fft_win: np.ndarray,  # (n_fft,) analysis window, scaled
    bin_band: np.ndarray,  # (bins, 2) band of each bin, -1 none
    bin_w: np.ndarray,  # (bins, 2) share of the bin in that band
    spec_long: np.ndarray,  # (2, bands) mid/side power sums
    spec_ring: np.ndarray,  # (R, 2, bands) recent FFT frames
    band_norm: float,  # band power -> sine-referenced power
    do_spec: bool,
    cnt: np.ndarray,  # int64 counters (C_*)
    sc: np.ndarray,  # float64 scalars (S_*)
) -> None:
    """Meter one block of audio; see the module docstring."""
    frames = block.shape[0]
    channels = block.shape[1]
    n_fft = fft_work.shape[1]
    fft_steps = fft_stages_of(n_fft) + 1  # butterfly stages, then the band split
    taps = tp_taps.shape[1]
    stereo = channels >= 2
    start = 0
    while start < frames:
        # Segment up to the next event so that events fire at exact sample counts.
        seg = frames - start
        left = sub_len - cnt[C_POS_IN_SUB]
        if left < seg:
            seg = left
        if do_spec:
            left = fft_hop - cnt[C_FFT_POS]
            if left < seg:
                seg = left
            if cnt[C_FFT_STEP] >= 0:
                left = (cnt[C_FFT_STEP] + 1) * cnt[C_FFT_SPACING] - cnt[C_FFT_POS]
                if left < seg:
                    seg = left
        stop = start + seg

        for c in range(channels):
            nonfinite = _channel_segment(
                block, c, start, stop, kw, kstate, acc, tp_lin, taps, clip_run, cnt
            )
            cnt[C_NONFINITE] += nonfinite
            if do_tp:
                peak = _true_peak_segment(tp_taps, tp_lin, tp_over, tp_prev, c, seg, taps)
                # Keep the newest taps-1 samples as the next segment's history.
                for k in range(taps - 1):
                    tp_lin[c, k] = tp_lin[c, seg + k]
            else:
                peak = 0.0
            # Raw sample peaks are true-peak lower bounds (covers the meter without
            # oversampling and the first taps/2 samples of the delayed stream).
            if acc[2, c] > peak:
                peak = acc[2, c]
            if peak > acc[3, c]:
                acc[3, c] = peak
            if peak > recent_tp[c]:
                recent_tp[c] = peak

        # Stereo sums and the spectrum input: mid/side of the first two channels.
        ll = sc[S_SUB_LL]
        rr = sc[S_SUB_RR]
        lr = sc[S_SUB_LR]
        fill = cnt[C_FFT_FILL]
        k_fft = cnt[C_FFT_POS]
        for n in range(start, stop):
            xl = float(block[n, 0])
            if not math.isfinite(xl):
                xl = 0.0
            if stereo:
                xr = float(block[n, 1])
                if not math.isfinite(xr):
                    xr = 0.0
                ll += xl * xl
                rr += xr * xr
                lr += xl * xr
                mid = 0.5 * (xl + xr)
                side = 0.5 * (xl - xr)
            else:
                mid = xl
                side = 0.0
            if do_spec:
                # Windowed mid + j*side, straight into bit-reversed order.
                wk = fft_win[k_fft]
                fft_work[fill, fft_rev[k_fft]] = complex(mid * wk, side * wk)
                k_fft += 1
        sc[S_SUB_LL] = ll
        sc[S_SUB_RR] = rr
        sc[S_SUB_LR] = lr
        cnt[C_POS_IN_SUB] += seg
        cnt[C_FRAMES] += seg
        if do_spec:
            cnt[C_FFT_POS] += seg
            step = cnt[C_FFT_STEP]
            if step >= 0 and cnt[C_FFT_POS] == (step + 1) * cnt[C_FFT_SPACING]:
                _spectrum_step(
                    fft_work, 1 - fill, fft_tw, bin_band, bin_w, spec_long, spec_ring,
                    fft_steps, cnt,
                )  # fmt: skip
            if cnt[C_FFT_POS] == fft_hop:
                cnt[C_FFT_POS] = 0
                while cnt[C_FFT_STEP] >= 0:  # never expected: steps end by a quarter hop
                    _spectrum_step(
                        fft_work, 1 - fill, fft_tw, bin_band, bin_w, spec_long, spec_ring,
                        fft_steps, cnt,
                    )  # fmt: skip
                cnt[C_FFT_FILL] = 1 - fill
                if cnt[C_FRAMES] >= n_fft:  # the buffer holds a whole frame
                    cnt[C_FFT_STEP] = 0
        if cnt[C_POS_IN_SUB] == sub_len:
            cnt[C_POS_IN_SUB] = 0
            _end_sub_block(
                sub_len, gain, acc, tot, ring_e, ring_tp, ring_st, hist_i, hist_s, psr_hist,
                psr_min, corr_min, dr_acc, dr_hist, dr_peaks, history, chan_hist, spec_hist,
                spec_ring, band_norm, do_spec, stereo, cnt, sc,
            )  # fmt: skip
        start = stop


@nb.njit(cache=True, nogil=True)
def fft_stages_of(n: int) -> int:
    """log2(n) for a power of two."""
    s = 0
    while (1 << s) < n:
        s += 1
    return s


@nb.njit(cache=True, nogil=True)
def _spectrum_step(
    work: np.ndarray,
    buf: int,
    tw: np.ndarray,
    bin_band: np.ndarray,
    bin_w: np.ndarray,
    spec_long: np.ndarray,
    spec_ring: np.ndarray,
    steps: int,
    cnt: np.ndarray,
) -> None:
    """One step of the pending frame's transform: a butterfly stage, or (last) the band split.

    A whole 8192-point frame costs about 150 us, a ninth of a 64-frame period at
    48 kHz, and three paths' frames would land in nearby blocks; one step costs
    about 10 us. Steps fire at fixed sample counts after the hop
    (``C_FFT_SPACING`` apart), so the result stays independent of how the input
    is cut into blocks; the spectrum lags the audio by at most a quarter hop.
    """
    step = cnt[C_FFT_STEP]
    z = work[buf]
    n = z.shape[0]
    if step < steps - 1:
        fft_stage(z, tw, 2 << step)
        cnt[C_FFT_STEP] = step + 1
        return
    # z = FFT(mid + j*side): split the two real spectra, sum bin powers into bands.
    slot = cnt[C_FFT_FRAMES] % spec_ring.shape[0]
    spec_ring[slot, :, :] = 0.0
    n_bins = bin_band.shape[0]
    for k in range(1, n_bins):
        zk = z[k]
        zc = z[n - k].conjugate() if k < n - k else z[k].conjugate()
        xm = 0.5 * (zk + zc)
        xs = -0.5j * (zk - zc)
        pm = xm.real * xm.real + xm.imag * xm.imag
        ps = xs.real * xs.real + xs.imag * xs.imag
        if k == n // 2:  # Nyquist bin is not doubled
            pm *= 0.5
            ps *= 0.5
        for j in range(2):
            b = bin_band[k, j]
            if b >= 0:
                wgt = bin_w[k, j]
                spec_ring[slot, 0, b] += wgt * pm
                spec_ring[slot, 1, b] += wgt * ps
    for b in range(spec_long.shape[1]):
        spec_long[0, b] += spec_ring[slot, 0, b]
        spec_long[1, b] += spec_ring[slot, 1, b]
    cnt[C_FFT_FRAMES] += 1
    cnt[C_FFT_STEP] = -1


@nb.njit(cache=True, nogil=True)
def _end_sub_block(
    sub_len: int,
    gain: np.ndarray,
    acc: np.ndarray,
    tot: np.ndarray,
    ring_e: np.ndarray,
    ring_tp: np.ndarray,
    ring_st: np.ndarray,
    hist_i: np.ndarray,
    hist_s: np.ndarray,
    psr_hist: np.ndarray,
    psr_min: np.ndarray,
    corr_min: np.ndarray,
    dr_acc: np.ndarray,
    dr_hist: np.ndarray,
    dr_peaks: np.ndarray,
    history: np.ndarray,
    chan_hist: np.ndarray,
    spec_hist: np.ndarray,
    spec_ring: np.ndarray,
    band_norm: float,
    do_spec: bool,
    stereo: bool,
    cnt: np.ndarray,
    sc: np.ndarray,
) -> None:
    """Close a 100 ms sub-block: momentary/short-term values, gating histograms, PSR, DR,
    and one row of the 10 Hz history."""
    channels = gain.shape[0]
    k = cnt[C_SUBS]
    slot = k % SUB_PER_SHORT_TERM
    h = cnt[C_HIST_POS]
    e = 0.0
    tp = 0.0
    sp = 0.0
    for c in range(channels):
        chan_hist[h, c, 0] = acc[1, c] / sub_len
        chan_hist[h, c, 1] = acc[2, c]
        if acc[2, c] > sp:
            sp = acc[2, c]
        e += gain[c] * acc[0, c] / sub_len
        tot[0, c] += acc[1, c]
        if acc[2, c] > tot[1, c]:
            tot[1, c] = acc[2, c]
        if acc[3, c] > tot[2, c]:
            tot[2, c] = acc[3, c]
        if acc[3, c] > tp:
            tp = acc[3, c]
        dr_acc[0, c] += acc[1, c]
        if acc[2, c] > dr_acc[1, c]:
            dr_acc[1, c] = acc[2, c]
        acc[0, c] = 0.0
        acc[1, c] = 0.0
        acc[2, c] = 0.0
        acc[3, c] = 0.0
    ring_e[slot] = e
    ring_tp[slot] = tp
    st_slot = k % SUB_PER_MOMENTARY
    ring_st[st_slot, 0] = sc[S_SUB_LL]
    ring_st[st_slot, 1] = sc[S_SUB_RR]
    ring_st[st_slot, 2] = sc[S_SUB_LR]
    sc[S_ST_LL] += sc[S_SUB_LL]
    sc[S_ST_RR] += sc[S_SUB_RR]
    sc[S_ST_LR] += sc[S_SUB_LR]
    sc[S_SUB_LL] = 0.0
    sc[S_SUB_RR] = 0.0
    sc[S_SUB_LR] = 0.0
    k += 1
    cnt[C_SUBS] = k

    m_lufs = np.nan
    if k >= SUB_PER_MOMENTARY:
        em = 0.0
        for j in range(SUB_PER_MOMENTARY):
            em += ring_e[(k - 1 - j) % SUB_PER_SHORT_TERM]
        em /= SUB_PER_MOMENTARY
        sc[S_CUR_M] = em
        if em > sc[S_MAX_M]:
            sc[S_MAX_M] = em
        if em > 0.0:
            m_lufs = _energy_to_lufs(em)
            if m_lufs >= HIST_MIN_LUFS:  # absolute gate, BS.1770-4
                b = _lufs_bin(m_lufs)
                hist_i[0, b] += 1.0
                hist_i[1, b] += em
        if stereo:
            sll = 0.0
            srr = 0.0
            slr = 0.0
            for j in range(SUB_PER_MOMENTARY):
                sll += ring_st[j, 0]
                srr += ring_st[j, 1]
                slr += ring_st[j, 2]
            if sll > 1e-20 and srr > 1e-20:
                corr = slr / math.sqrt(sll * srr)
                sc[S_CUR_CORR] = corr
                if m_lufs >= HIST_MIN_LUFS:
                    row = int(m_lufs - HIST_MIN_LUFS)
                    if row > 99:
                        row = 99
                    if corr < corr_min[row]:
                        corr_min[row] = corr
            else:
                sc[S_CUR_CORR] = np.nan

    s_lufs = np.nan
    psr = np.nan
    tp3 = 0.0
    for j in range(min(k, SUB_PER_SHORT_TERM)):
        if ring_tp[j] > tp3:
            tp3 = ring_tp[j]
    sc[S_CUR_TP3] = tp3
    if k >= SUB_PER_SHORT_TERM:
        es = 0.0
        for j in range(SUB_PER_SHORT_TERM):
            es += ring_e[j]
        es /= SUB_PER_SHORT_TERM
        sc[S_CUR_S] = es
        cnt[C_ST_BLOCKS] += 1
        if es > sc[S_MAX_S]:
            sc[S_MAX_S] = es
        if es > 0.0:
            s_lufs = _energy_to_lufs(es)
            if s_lufs >= HIST_MIN_LUFS:
                b = _lufs_bin(s_lufs)
                hist_s[0, b] += 1.0
                hist_s[1, b] += es
                if tp3 > 0.0:
                    psr = 20.0 * math.log10(tp3) - s_lufs
                    row = int(s_lufs - HIST_MIN_LUFS)
                    if row > PSR_ROWS - 1:
                        row = PSR_ROWS - 1
                    col = int(psr / PSR_BIN_DB)
                    if col < 0:
                        col = 0
                    if col > PSR_COLS - 1:
                        col = PSR_COLS - 1
                    psr_hist[row, col] += 1
                    if psr < psr_min[row]:
                        psr_min[row] = psr
    sc[S_CUR_PSR] = psr

    if k % SUB_PER_DR_BLOCK == 0:
        frames = SUB_PER_DR_BLOCK * sub_len
        for c in range(channels):
            ms2 = 2.0 * dr_acc[0, c] / frames  # TT DR meter: RMS scaled by sqrt(2)
            if ms2 > 0.0:
                db = 10.0 * math.log10(ms2)
                b = int(math.floor((db - DR_MIN_DB) * 100.0))
                if b < 0:
                    b = 0
                if b > DR_BINS - 1:
                    b = DR_BINS - 1
                dr_hist[c, 0, b] += 1.0
                dr_hist[c, 1, b] += ms2
            else:
                dr_hist[c, 0, 0] += 1.0
            peak = dr_acc[1, c]
            if peak > dr_peaks[c, 0]:
                dr_peaks[c, 1] = dr_peaks[c, 0]
                dr_peaks[c, 0] = peak
            elif peak > dr_peaks[c, 1]:
                dr_peaks[c, 1] = peak
            dr_acc[0, c] = 0.0
            dr_acc[1, c] = 0.0
        cnt[C_DR_BLOCKS] += 1

    # History at 10 Hz (dB values, NaN where undefined).
    history[H_MOMENTARY, h] = m_lufs
    history[H_SHORT_TERM, h] = s_lufs
    history[H_TP_3S, h] = 20.0 * math.log10(tp3) if tp3 > 0.0 else np.nan
    history[H_PSR, h] = psr
    history[H_TP, h] = 20.0 * math.log10(tp) if tp > 0.0 else np.nan
    history[H_SAMPLE_PEAK, h] = 20.0 * math.log10(sp) if sp > 0.0 else np.nan
    history[H_CLIPPED, h] = cnt[C_CLIP_SUB]
    cnt[C_CLIPPED] += cnt[C_CLIP_SUB]
    cnt[C_CLIP_SUB] = 0
    # The short-term (last ~3 s) spectrum, mid + side power per band.
    n_frames = cnt[C_FFT_FRAMES]
    if do_spec and n_frames > 0:
        recent = min(n_frames, spec_ring.shape[0])
        scale = band_norm / recent
        for b in range(spec_hist.shape[1]):
            acc_b = 0.0
            for r in range(spec_ring.shape[0]):
                acc_b += spec_ring[r, 0, b] + spec_ring[r, 1, b]
            spec_hist[h, b] = acc_b * scale
    else:
        for b in range(spec_hist.shape[1]):
            spec_hist[h, b] = np.nan
    h += 1
    if h == history.shape[1]:
        h = 0
    cnt[C_HIST_POS] = h
    if cnt[C_HIST_LEN] < history.shape[1]:
        cnt[C_HIST_LEN] += 1
    cnt[C_HIST_ROWS] += 1  # last: a reader on another thread sees only complete rows


@nb.njit(cache=True, nogil=True)
def dr_db(dr_hist: np.ndarray, dr_peaks: np.ndarray, weights: np.ndarray, blocks: int) -> float:
    """Crest-factor dynamic range (DR14 style), mean over the weighted channels; NaN if none.

    Per channel: the second-highest block peak over the RMS of the loudest 20 % of
    blocks (from the per-channel histogram of block powers).
    """
    top = max(1, int(round(0.2 * blocks)))
    total = 0.0
    n = 0
    for c in range(dr_hist.shape[0]):
        if weights[c] == 0.0:  # LFE
            continue
        need, acc = float(top), 0.0
        for b in range(dr_hist.shape[2] - 1, -1, -1):
            count = dr_hist[c, 0, b]
            if count == 0:
                continue
            take = min(need, count)
            acc += dr_hist[c, 1, b] / count * take
            need -= take
            if need <= 0:
                break
        peak2 = dr_peaks[c, 1] if blocks >= 2 else dr_peaks[c, 0]
        if acc > 0.0 and peak2 > 0.0:
            total += 20.0 * math.log10(peak2) - 10.0 * math.log10(acc / top)
            n += 1
    return total / n if n else math.nan


@nb.njit(cache=True, nogil=True)
def add_loudness(hist: np.ndarray, lufs: float) -> None:
    """Add one block's loudness (LUFS) to a ``(2, HIST_BINS)`` gating histogram (counts,
    energy sums), binned as :func:`process_block` bins its own blocks: below the
    absolute gate (and NaN) is left out. For callers that hold the history rows' values
    rather than the audio (the detectors), so their gated loudness is the bank's."""
    if not lufs >= HIST_MIN_LUFS:
        return
    b = _lufs_bin(lufs)
    hist[0, b] += 1.0
    hist[1, b] += 10.0 ** ((lufs - LOUDNESS_OFFSET) / 10.0)


@nb.njit(cache=True, nogil=True)
def relative_gate_lufs(hist: np.ndarray, relative_lu: float) -> float:
    """The relative gate of BS.1770-4 / Tech 3342: mean loudness of the histogram's
    blocks (all above the absolute gate already) plus ``relative_lu``; NaN if empty."""
    n = 0.0
    s = 0.0
    for b in range(hist.shape[1]):
        n += hist[0, b]
        s += hist[1, b]
    if n == 0.0:
        return np.nan
    return _energy_to_lufs(s / n) + relative_lu


@nb.njit(cache=True, nogil=True)
def gated_mean_energy(hist: np.ndarray, relative_lu: float) -> float:
    """Mean energy of histogram blocks above the relative gate (BS.1770-4 two-stage gating).

    Returns 0.0 when no block passes.
    """
    gate = relative_gate_lufs(hist, relative_lu)
    if math.isnan(gate):
        return 0.0
    first = max(_lufs_bin(gate), 0)
    # The bin holding the gate: its blocks are at most 0.01 LU either side;
    # keep them only if the bin's mean is above the gate.
    n = 0.0
    s = 0.0
    for b in range(first, hist.shape[1]):
        if hist[0, b] == 0.0:
            continue
        if b == first and _energy_to_lufs(hist[1, b] / hist[0, b]) < gate:
            continue
        n += hist[0, b]
        s += hist[1, b]
    if n == 0.0:
        return 0.0
    return s / n


@nb.njit(cache=True, nogil=True)
def loudness_range(hist: np.ndarray) -> float:
    """EBU Tech 3342 LRA from the short-term histogram: 95th - 10th percentile after gating.

    Percentile positions follow libebur128 (index round((n - 1) * p) of the sorted
    values). Returns NaN when no block passes the gates.
    """
    gate = relative_gate_lufs(hist, LRA_RELATIVE_LU)
    if math.isnan(gate):
        return np.nan
    first = max(_lufs_bin(gate), 0)
    total = 0.0
    for b in range(first, hist.shape[1]):
        total += hist[0, b]
    if total == 0.0:
        return np.nan
    lo_idx = math.floor((total - 1.0) * 0.10 + 0.5)
    hi_idx = math.floor((total - 1.0) * 0.95 + 0.5)
    lo = np.nan
    hi = np.nan
    seen = 0.0
    for b in range(first, hist.shape[1]):
        cb = hist[0, b]
        if cb == 0.0:
            continue
        if math.isnan(lo) and seen + cb > lo_idx:
            lo = _energy_to_lufs(hist[1, b] / cb)
        if seen + cb > hi_idx:
            hi = _energy_to_lufs(hist[1, b] / cb)
            break
        seen += cb
    return hi - lo


@nb.njit(cache=True, nogil=True)
def band_summary(
    spec_long: np.ndarray,
    spec_ring: np.ndarray,
    n_frames: int,
    spec_frames: int,
    band_norm: float,
    band_hz: np.ndarray,
    tilt_lo_hz: float,
    tilt_hi_hz: float,
    tilt_range_db: float,
    out_db: np.ndarray,
) -> float:
    """Long-term and short-term band levels, and the spectral tilt, in one GIL-free call.

    ``out_db`` (2, bands) receives the programme (row 0) and last-3-s (row 1) band
    levels in sine-referenced dB, NaN where a band holds no power. Returns the
    tilt in dB per octave: the least-squares slope of the long-term levels over
    log2(frequency) between ``tilt_lo_hz`` and ``tilt_hi_hz``, leaving out bands
    more than ``tilt_range_db`` below the loudest there (leakage and rounding
    noise, not programme); NaN with fewer than three bands.
    """
    nb_ = band_hz.shape[0]
    recent = min(n_frames, spec_frames)
    for b in range(nb_):
        lp = (spec_long[0, b] + spec_long[1, b]) / n_frames * band_norm
        sp = 0.0
        for f in range(spec_ring.shape[0]):
            sp += spec_ring[f, 0, b] + spec_ring[f, 1, b]
        sp = sp / recent * band_norm
        out_db[0, b] = 10.0 * math.log10(lp) if lp > 1e-20 else np.nan
        out_db[1, b] = 10.0 * math.log10(sp) if sp > 1e-20 else np.nan
    top = -np.inf
    for b in range(nb_):
        v = out_db[0, b]
        if tilt_lo_hz <= band_hz[b] <= tilt_hi_hz and not math.isnan(v) and v > top:
            top = v
    if top == -np.inf:
        return np.nan
    floor = top - tilt_range_db
    n = 0
    sx = sy = sxx = sxy = 0.0
    for b in range(nb_):
        v = out_db[0, b]
        if tilt_lo_hz <= band_hz[b] <= tilt_hi_hz and not math.isnan(v) and v >= floor:
            x = math.log2(band_hz[b])
            n += 1
            sx += x
            sy += v
            sxx += x * x
            sxy += x * v
    if n < 3:
        return np.nan
    return (n * sxy - sx * sy) / (n * sxx - sx * sx)


@nb.njit(cache=True, nogil=True)
def psr_stats(psr_min: np.ndarray, psr_hist: np.ndarray, first_row: int) -> tuple[float, float]:
    """Minimum and median PSR over the rows of the PSR table from ``first_row`` (the
    LRA gate's row) up; NaN, NaN when those rows hold no value."""
    cols = psr_hist.shape[1]
    total = 0
    for r in range(first_row, psr_hist.shape[0]):
        for c in range(cols):
            total += psr_hist[r, c]
    if total == 0:
        return np.nan, np.nan
    lowest = np.inf
    for r in range(first_row, psr_min.shape[0]):
        lowest = min(lowest, psr_min[r])
    half = (total + 1) // 2
    seen = 0
    median_col = cols - 1
    for c in range(cols):
        for r in range(first_row, psr_hist.shape[0]):
            seen += psr_hist[r, c]
        if seen >= half:
            median_col = c
            break
    return lowest, (median_col + 0.5) * PSR_BIN_DB
