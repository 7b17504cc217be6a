"""mmfuse's sound features (log-mel and MFCC) defined in NumPy/SciPy.

This is the written-down definition the C++ code in src/audio/mel_features.cpp
implements; tests/tools/make_sound_fixtures.py uses it to write the reference
values the C++ test compares against (to 1e-4), and training/train_sound.py uses
it to turn clips into the features the C++ classifier sees.

The definition follows librosa's defaults (librosa.feature.melspectrogram /
power_to_db / mfcc), written out here so nothing depends on librosa:
  pre-emphasis  y[0] = x[0], y[n] = x[n] - a * x[n-1]  (a = 0 switches it off)
  framing       centre padding of n_fft // 2 zeros (or reflection) on both sides,
                frame t = padded[t*hop : t*hop + n_fft], frames = 1 + len // hop
  window        periodic Hann of frame_length samples, centred inside n_fft
  spectrum      power |rfft(frame * window, n_fft)|^2, n_fft // 2 + 1 bins
  mel filters   triangular, Slaney mel scale (linear below 1 kHz, log above) or
                HTK (2595 log10(1 + f / 700)); Slaney area normalisation (2 / width)
  log           10 log10(max(amin, S)) - 10 log10(max(amin, ref)), then floored at
                (max over the whole clip) - top_db
  MFCC          DCT-II with orthonormal scaling over the mel axis, first n_mfcc rows,
                optional lifter: c_n *= 1 + (L / 2) sin(pi (n + 1) / L)
Arrays are time-major: [frames, n_mels] and [frames, n_mfcc].
"""

import math

import numpy as np
import scipy.fft

DEFAULTS = {
    "sample_rate": 16000,
    "pre_emphasis": 0.97,
    "frame_length": 400,  # 25 ms at 16 kHz
    "hop_length": 160,  # 10 ms
    "n_fft": 512,
    "center": True,
    "pad_mode": "constant",  # or "reflect"
    "n_mels": 64,
    "fmin": 0.0,
    "fmax": 0.0,  # 0 means sample_rate / 2
    "mel_scale": "slaney",  # or "htk"
    "mel_norm": "slaney",  # or "none"
    "amin": 1e-10,
    "ref": 1.0,
    "top_db": 80.0,  # 0 switches the floor off
    "n_mfcc": 40,
    "lifter": 0.0,
}


def config(**overrides):
    cfg = dict(DEFAULTS)
    for key, value in overrides.items():
        if key not in cfg:
            raise KeyError(f"unknown feature parameter {key}")
        cfg[key] = value
    return cfg


def hz_to_mel(f, scale):
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m, scale):
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(cfg):
    """[n_mels, n_fft // 2 + 1] triangular filters, as librosa.filters.mel."""
    sr, n_fft, n_mels = cfg["sample_rate"], cfg["n_fft"], cfg["n_mels"]
    fmax = cfg["fmax"] if cfg["fmax"] > 0 else sr / 2.0
    fftfreqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mels = np.linspace(hz_to_mel(cfg["fmin"], cfg["mel_scale"]), hz_to_mel(fmax, cfg["mel_scale"]), n_mels + 2)
    mel_f = mel_to_hz(mels, cfg["mel_scale"])
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    if cfg["mel_norm"] == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def power_spectrogram(x, cfg):
    """[frames, n_fft // 2 + 1] power spectrum of a mono float signal."""
    x = np.asarray(x, dtype=np.float64)
    a = cfg["pre_emphasis"]
    if a != 0.0 and len(x) > 0:
        x = np.concatenate([x[:1], x[1:] - a * x[:-1]])
    n_fft, hop, win = cfg["n_fft"], cfg["hop_length"], cfg["frame_length"]
    if cfg["center"]:
        mode = cfg["pad_mode"]
        if mode == "reflect" and len(x) <= n_fft // 2:
            mode = "constant"  # too short to reflect (the C++ code does the same)
        x = np.pad(x, n_fft // 2, mode=mode)
    if len(x) < n_fft:
        return np.zeros((0, n_fft // 2 + 1))
    frames = 1 + (len(x) - n_fft) // hop
    n = np.arange(win)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win)  # periodic Hann
    padded_window = np.zeros(n_fft)
    offset = (n_fft - win) // 2
    padded_window[offset : offset + win] = window
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.fft.rfft(x[idx] * padded_window[None, :], n=n_fft, axis=1)
    return spec.real**2 + spec.imag**2


def power_to_db(s, cfg):
    log = 10.0 * np.log10(np.maximum(cfg["amin"], s)) - 10.0 * np.log10(max(cfg["amin"], cfg["ref"]))
    if cfg["top_db"] > 0 and log.size > 0:
        log = np.maximum(log, log.max() - cfg["top_db"])
    return log


def log_mel(x, cfg):
    """[frames, n_mels] log-mel spectrogram in dB."""
    mel = power_spectrogram(x, cfg) @ mel_filterbank(cfg).T
    return power_to_db(mel, cfg)


def mfcc(x, cfg):
    """[frames, n_mfcc] MFCCs."""
    lm = log_mel(x, cfg)
    c = scipy.fft.dct(lm, type=2, norm="ortho", axis=1)[:, : cfg["n_mfcc"]]
    if cfg["lifter"] > 0:
        n = np.arange(cfg["n_mfcc"])
        c = c * (1.0 + (cfg["lifter"] / 2.0) * np.sin(np.pi * (n + 1) / cfg["lifter"]))[None, :]
    return c


def standardize(features, min_std=1e-4):
    """Per-coefficient standardisation over time of one clip (the chapter's
    StandardScaler().fit_transform on each clip's MFCC matrix): population std;
    a coefficient whose std is below min_std is only centred (as StandardScaler
    leaves constant columns unscaled)."""
    mean = features.mean(axis=0, keepdims=True)
    std = features.std(axis=0, keepdims=True)
    return (features - mean) / np.where(std < min_std, 1.0, std)


# --- pre-processing (src/audio/normalize.cpp, src/audio/silence_trim.cpp) ---

PREPROCESS_DEFAULTS = {
    "sample_rate": 16000,
    "resampler": "soxr_hq",
    "downmix": "mean",
    "normalize": "peak",  # none | peak | rms
    "normalize_target": 1.0,
    "trim_silence": True,
    "trim_frame_s": 0.025,
    "trim_hop_s": 0.010,
    "trim_threshold_db": 40.0,
    "trim_min_keep_s": 0.5,
    "trim_interior": False,
    "trim_min_gap_s": 0.3,
}


def normalize(x, mode="peak", target=1.0):
    x = np.asarray(x, dtype=np.float64)
    if mode == "none" or len(x) == 0:
        return x
    level = np.abs(x).max() if mode == "peak" else np.sqrt(np.mean(x**2))
    return x if level <= 0 else x * (target / level)


def non_silent_ranges(x, sr, p):
    """Sample ranges [begin, end) kept by the short-time-energy silence trim."""
    n = len(x)
    frame = max(1, int(round(p["trim_frame_s"] * sr)))
    hop = max(1, int(round(p["trim_hop_s"] * sr)))
    if not p["trim_silence"] or n <= frame:
        return [(0, n)]
    frames = 1 + (n - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(frames)[:, None]
    energy = np.mean(np.asarray(x, dtype=np.float64)[idx] ** 2, axis=1)
    loudest = energy.max()
    if loudest <= 0:
        return [(0, n)]
    floor = loudest * 10.0 ** (-p["trim_threshold_db"] / 10.0)
    loud = []
    for f in np.nonzero(energy >= floor)[0]:
        begin, end = f * hop, (n if f + 1 == frames else min(n, f * hop + frame))
        if loud and begin <= loud[-1][1]:
            loud[-1][1] = max(loud[-1][1], end)
        else:
            loud.append([begin, end])
    if not p["trim_interior"]:
        kept = [[loud[0][0], loud[-1][1]]]
    else:
        min_gap = int(round(p["trim_min_gap_s"] * sr))
        kept = []
        for r in loud:
            if kept and r[0] - kept[-1][1] < min_gap:
                kept[-1][1] = r[1]
            else:
                kept.append(list(r))
    total = sum(e - b for b, e in kept)
    min_keep = min(n, int(round(p["trim_min_keep_s"] * sr)))
    if total < min_keep:
        centre = (kept[0][0] + kept[-1][1]) // 2
        begin = centre - min_keep // 2 if centre >= min_keep // 2 else 0
        begin = min(begin, n - min_keep)
        kept = [[begin, begin + min_keep]]
    return [(int(b), int(e)) for b, e in kept]


def preprocess(x, sr, p=None):
    """Mono float clip at its own rate -> the samples the features are computed on.
    Resampling here uses scipy's polyphase filter, not libsoxr: fine for training,
    but clips already at p["sample_rate"] get what mmfuse computes, to float rounding."""
    p = dict(PREPROCESS_DEFAULTS, **(p or {}))
    x = np.asarray(x, dtype=np.float64)
    if sr != p["sample_rate"]:
        import scipy.signal

        g = math.gcd(sr, p["sample_rate"])
        x = scipy.signal.resample_poly(x, p["sample_rate"] // g, sr // g)
    x = normalize(x, p["normalize"], p["normalize_target"])
    x = x.astype(np.float32).astype(np.float64)  # mmfuse works on float32 samples
    return np.concatenate([x[b:e] for b, e in non_silent_ranges(x, p["sample_rate"], p)])


def read_wav_mono(path):
    """(samples as float64 in [-1, 1), rate) of a PCM/float WAV, channels averaged."""
    from scipy.io import wavfile

    sr, data = wavfile.read(path)
    if data.dtype == np.int16:
        data = data / 32768.0
    elif data.dtype == np.int32:
        data = data / 2147483648.0
    elif data.dtype == np.uint8:
        data = (data.astype(np.float64) - 128.0) / 128.0
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return data, int(sr)
