"""Compiled (numba) kernels of the hot loops of preprocessing and inference.

Each kernel is a fused, row-by-row version of a numpy reference implementation that stays
the definition of the result: :func:`spectra.reference.normalise_arm` /
:func:`spectra.reference.shift_to_rest_frame`
(the ``spectra.preprocess`` reference path), :func:`spectra.median_snr_reference`, and
``nn.predict.standardise`` / ``nn.predict.input_distance``. The kernels repeat the reference's
float32 operations, so results agree to float32 rounding and masks are identical; only the
order of some float64 sums differs (the Gaussian smoothing, which accumulates in float64 as
``scipy.ndimage`` does, adds symmetric tap pairs; the input distance's sum is reassociated
to vectorise). The median S/N is exact (a radix selection, equal to a sort).
``tests/spectra/test_compiled.py`` and ``tests/inference/test_speed_paths.py`` check it.

Why: the numpy versions make a dozen passes over (n, 7781) float32 temporaries per step.
:func:`preprocess_rows` reads each spectrum's arms once, keeps the merged row and every work
array in cache, and writes the outputs once (a pass over a coadd's arrays costs ~1.5 ns per
pixel from memory; the arithmetic in cache is cheaper). The loops are written branch-free
(``&``/``|``, selects) over contiguous arrays so that LLVM vectorises them: numba's
short-circuit ``and``/``or``, strided views and negative-index wraparound each stop that.
``nogil=True`` lets the inference reader threads run them while torch runs the network;
``cache=True`` keeps the compiled code in ``__pycache__`` so only the first process ever
compiles.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_BAD_VARIANCE = np.float32(1e30)
_VARIANCE_LIMIT = np.float32(1e20)


def gaussian_weights(sigma: float, truncate: float = 5.0) -> np.ndarray:
    """The float64 taps ``scipy.ndimage.gaussian_filter1d(sigma, truncate=truncate)`` uses."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


@njit(cache=True, nogil=True, error_model="numpy")
def _symmetric_convolution(padded, taps, out, n_bins):
    """``out[b] = sum_t taps[t] padded[b + t]`` for b < n_bins (float64), for symmetric
    ``taps``: pairs ``padded[b + r - j] + padded[b + r + j]`` share a tap. Tap-outer loops over
    slices (no negative-index wraparound, so the bin loop vectorises)."""
    radius = (taps.size - 1) // 2
    centre = taps[radius]
    middle = padded[radius:radius + n_bins]
    for b in range(n_bins):
        out[b] = centre * middle[b]
    for j in range(1, radius + 1):
        weight = taps[radius + j]
        below = padded[radius - j:radius - j + n_bins]
        above = padded[radius + j:radius + j + n_bins]
        for b in range(n_bins):
            out[b] += weight * (below[b] + above[b])


@njit(cache=True, nogil=True, error_model="numpy")
def _smooth_level(sum_wf, sum_w, taps, level, scratch):
    """level = gaussian(sum_wf) / gaussian(sum_w) per bin (constant-0 edges, float64
    accumulation rounded to float32 as scipy does), NaN where the smoothed weight is <= 0,
    then NaN filled with the nearest finite bin (ties: the left one; none: 1).

    ``scratch``: (4, n_bins + taps.size - 1) float64 work space."""
    n_bins = sum_wf.size
    radius = (taps.size - 1) // 2
    padded_wf = scratch[0]
    padded_w = scratch[1]
    num = scratch[2]
    den = scratch[3]
    padded_wf[:] = 0.0
    padded_w[:] = 0.0
    for b in range(n_bins):
        padded_wf[radius + b] = sum_wf[b]
        padded_w[radius + b] = sum_w[b]
    _symmetric_convolution(padded_wf, taps, num, n_bins)
    _symmetric_convolution(padded_w, taps, den, n_bins)
    any_nan = False
    any_good = False
    for b in range(n_bins):
        num32 = np.float32(num[b])
        den32 = np.float32(den[b])
        if den32 > 0:
            level[b] = num32 / den32
            any_good = True
        else:
            level[b] = np.nan
            any_nan = True
    if not any_nan:
        return
    if not any_good:
        level[:] = 1.0
        return
    # nearest finite bin (as spectra.reference._fill_nan_rows): a tie goes to the left one
    last = -1
    b = 0
    while b < n_bins:
        if not np.isnan(level[b]):
            last = b
            b += 1
            continue
        nxt = b
        while nxt < n_bins and np.isnan(level[nxt]):
            nxt += 1
        for k in range(b, nxt):
            if last < 0 or (nxt < n_bins and nxt - k < k - last):
                level[k] = level[nxt]
            else:
                level[k] = level[last]
        b = nxt


@njit(cache=True, nogil=True, error_model="numpy")
def _bin_sums(wf_t, w_t, sum_wf, sum_w):
    """Sums over the bins of bin-major (``[k, b]``: pixel k of bin b) arrays, each bin summed
    in pixel order; the loop runs across bins on contiguous rows (it vectorises)."""
    bin_pixels, n_bins = wf_t.shape
    sum_wf[:] = 0.0
    sum_w[:] = 0.0
    for k in range(bin_pixels):
        for b in range(n_bins):
            sum_wf[b] += wf_t[k, b]
            sum_w[b] += w_t[k, b]


@njit(cache=True, nogil=True, error_model="numpy")
def _normalise_arm_row(flux, ivar, mask, taps, iterations, clip_sigma, keep_fraction,
                       left_weight, right_weight, weighted, total, w_t, wf_t, k_sqrt_w_t,
                       sum_wf, sum_w, level, scaled, scratch, w_p, wf_p):
    """:func:`spectra.normalise_arm` of one spectrum's arm (1-d ``flux``, ``ivar``,
    ``mask``), added into its slice of the merged row: ``weighted += ivar_n * flux_n`` and
    ``total += ivar_n``.

    ``w_t``, ``wf_t``, ``k_sqrt_w_t``: (bin_pixels, n_bins) work arrays, bin-major (pixel
    ``b * bin_pixels + k`` at ``[k, b]``), so the bin sums and the clipping passes run across
    bins on contiguous rows and vectorise; each bin is still summed in pixel order (the
    same float32 sums). ``sum_wf``, ``sum_w``, ``level``, ``scaled``: (n_bins,); all work
    arrays contiguous (strided ones would stop the loops vectorising). ``w_p``, ``wf_p``:
    (bin_pixels * n_bins,) the same weights in pixel order (work arrays).
    """
    n_pixels = flux.size
    bin_pixels, n_bins = w_t.shape
    half = left_weight.size
    zero = np.float32(0.0)
    # weights in pixel order first (contiguous: vectorises), then transposed to bin-major;
    # the last bin's padding pixels weigh 0
    for p in range(n_pixels):
        weight = ivar[p]
        weight = weight if ((mask[p] == 0) & (weight > 0)) else zero
        product = flux[p] * weight
        good = np.isfinite(product)
        w_p[p] = weight if good else zero
        wf_p[p] = product if good else zero
    w_p[n_pixels:] = zero
    wf_p[n_pixels:] = zero
    for k in range(bin_pixels):  # pixel-outer: contiguous stores (it vectorises)
        w_k = w_t[k]
        wf_k = wf_t[k]
        for b in range(n_bins):
            w_k[b] = w_p[b * bin_pixels + k]
            wf_k[b] = wf_p[b * bin_pixels + k]
    _bin_sums(wf_t, w_t, sum_wf, sum_w)
    _smooth_level(sum_wf, sum_w, taps, level, scratch)
    if iterations > 1:
        for k in range(bin_pixels):
            for b in range(n_bins):
                k_sqrt_w_t[k, b] = np.float32(math.sqrt(w_t[k, b])) * clip_sigma
        for _ in range(iterations - 1):
            # clipping fused with the bin sums (same pixel order: the same float32 sums
            # as summing kept arrays with _bin_sums, without writing them)
            for b in range(n_bins):
                scaled[b] = level[b] * keep_fraction
                sum_wf[b] = zero
                sum_w[b] = zero
            for k in range(bin_pixels):
                wf_k = wf_t[k]
                w_k = w_t[k]
                k_sqrt_w_k = k_sqrt_w_t[k]
                for b in range(n_bins):
                    line = wf_k[b] < w_k[b] * scaled[b] - k_sqrt_w_k[b]
                    sum_wf[b] += zero if line else wf_k[b]  # absorption: left out
                    sum_w[b] += zero if line else w_k[b]
            _smooth_level(sum_wf, sum_w, taps, level, scratch)
    for b in range(n_bins):
        if not (level[b] > 0):
            level[b] = 1.0
    for b in range(n_bins):
        here = level[b]
        previous = (level[b - 1] if b > 0 else here) - here
        following = (level[b + 1] if b + 1 < n_bins else here) - here
        start = b * bin_pixels
        for k in range(bin_pixels):
            p = start + k
            if p >= n_pixels:
                break
            if k < half:
                cont = previous * left_weight[k] + here
            else:
                cont = following * right_weight[k - half] + here
            weighted[p] += wf_t[k, b] * cont
            total[p] += (w_t[k, b] * cont) * cont


@njit(cache=True, nogil=True, error_model="numpy")
def _merge_and_shift_row(weighted, total, low, high, scale, shift, rest_frame_ok,
                         out_flux, out_ivar, out_mask, packed_flux, packed_var, left_index,
                         fraction, inside):
    """The end of :func:`spectra.preprocess` for one spectrum: merged flux = weighted /
    total, out-of-range fluxes dropped, then :func:`spectra.shift_to_rest_frame` (float32
    positions ``i * scale + shift``), bad pixels to flux 1, ivar 0, mask True. Returns the
    fraction of good pixels.

    The interpolation runs over stretches of pixels whose left neighbour is a constant
    offset away (hundreds of pixels each: the Doppler factor is within 0.3 % of 1), so its
    loads are contiguous and the loop vectorises instead of gathering. The last five
    arguments are (n_pixels,) work arrays."""
    n_pixels = weighted.size
    one = np.float32(1.0)
    zero = np.float32(0.0)
    last_left = np.float32(n_pixels - 2)
    # branch-free (& and |, not "and"/"or"), so that every loop vectorises
    for p in range(n_pixels):  # merge: divisions computed everywhere, then selected
        t_ = total[p]
        summed = weighted[p]
        positive = t_ > 0
        value = summed / t_ if positive else summed
        keep = positive & (value >= low) & (value <= high)
        packed_flux[p] = value
        packed_var[p] = one / t_ if keep else _BAD_VARIANCE
    for i in range(n_pixels):  # observed-frame positions
        position = np.float32(i) * scale + shift
        left_float = np.floor(position)
        fraction[i] = position - left_float
        inside[i] = (left_float >= zero) & (left_float <= last_left)
        left_index[i] = np.int32(min(max(left_float, zero), last_left))
    n_bad = 0
    start = 0
    while start < n_pixels:
        offset = left_index[start] - start
        stop = start + 1
        while stop < n_pixels and left_index[stop] - stop == offset:
            stop += 1
        # contiguous slices (loads at i + offset): the loop vectorises instead of gathering
        flux_left = packed_flux[start + offset:stop + offset]
        flux_right = packed_flux[start + offset + 1:stop + offset + 1]
        var_left = packed_var[start + offset:stop + offset]
        var_right = packed_var[start + offset + 1:stop + offset + 1]
        stretch_fraction = fraction[start:stop]
        stretch_inside = inside[start:stop]
        stretch_flux = out_flux[start:stop]
        stretch_ivar = out_ivar[start:stop]
        stretch_mask = out_mask[start:stop]
        for j in range(stop - start):
            t = stretch_fraction[j]
            f_left = flux_left[j]
            value = (flux_right[j] - f_left) * t + f_left
            w0 = one - t
            variance = w0 * w0 * var_left[j] + (t * t) * var_right[j]
            bad = (~stretch_inside[j]) | (variance > _VARIANCE_LIMIT) | (not rest_frame_ok)
            stretch_ivar[j] = zero if bad else one / variance
            stretch_flux[j] = one if bad else value
            stretch_mask[j] = bad
            n_bad += bad
        start = stop
    return one - np.float32(n_bad) / np.float32(n_pixels)


@njit(cache=True, nogil=True, error_model="numpy")
def preprocess_rows(fluxes, ivars, masks, offsets, bin_pixels, taps, iterations, clip_sigma,
                    keep_fraction, left_weight, right_weight, low, high, scale, shift,
                    rest_frame_ok, out_flux, out_ivar, out_mask, good_fraction, snr):
    """:func:`spectra.preprocess` of every row, one spectrum at a time: each arm
    continuum-normalised into the merged row (:func:`_normalise_arm_row`; arm ``a`` starts at
    grid pixel ``offsets[a]``), then merged and shifted to the rest frame into the outputs
    (:func:`_merge_and_shift_row`); ``snr`` gets the median S/N per pixel of the input
    arms (:func:`spectra.median_snr`, exactly), computed while the arms are in cache.

    ``fluxes``, ``ivars``, ``masks``: tuples of the arms' (n, n_pixels_arm) arrays. One
    spectrum's merged row and work arrays stay in cache: the inputs are read once and the
    outputs written once, with no full-size intermediate arrays."""
    n, n_grid = out_flux.shape
    max_bins = 1
    for a in range(len(fluxes)):
        max_bins = max(max_bins, -(-fluxes[a].shape[1] // bin_pixels))
    w_flat = np.empty(bin_pixels * max_bins, np.float32)
    wf_flat = np.empty(bin_pixels * max_bins, np.float32)
    k_sqrt_w_flat = np.empty(bin_pixels * max_bins, np.float32)
    w_pixels = np.empty(bin_pixels * max_bins, np.float32)
    wf_pixels = np.empty(bin_pixels * max_bins, np.float32)
    sum_wf = np.empty(max_bins, np.float32)
    sum_w = np.empty(max_bins, np.float32)
    level = np.empty(max_bins, np.float32)
    scaled = np.empty(max_bins, np.float32)
    scratch = np.zeros((4, max_bins + taps.size - 1))
    weighted = np.empty(n_grid, np.float32)
    total = np.empty(n_grid, np.float32)
    packed_flux = np.empty(n_grid, np.float32)
    packed_var = np.empty(n_grid, np.float32)
    left_index = np.empty(n_grid, np.int32)
    fraction = np.empty(n_grid, np.float32)
    inside = np.empty(n_grid, np.bool_)
    n_arm_pixels = 0
    for a in range(len(fluxes)):
        n_arm_pixels += fluxes[a].shape[1]
    ratios = np.empty(n_arm_pixels, np.float32)
    keys = np.empty(n_arm_pixels, np.uint32)
    candidates = np.empty(n_arm_pixels, np.uint32)
    histograms = np.empty((4, 2048), np.int32)
    for row in range(n):
        weighted[:] = 0.0
        total[:] = 0.0
        for a in range(len(fluxes)):
            n_pixels = fluxes[a].shape[1]
            n_bins = -(-n_pixels // bin_pixels)
            size = bin_pixels * n_bins
            start = offsets[a]
            _normalise_arm_row(
                fluxes[a][row], ivars[a][row], masks[a][row], taps, iterations, clip_sigma,
                keep_fraction, left_weight, right_weight,
                weighted[start:start + n_pixels], total[start:start + n_pixels],
                w_flat[:size].reshape((bin_pixels, n_bins)),
                wf_flat[:size].reshape((bin_pixels, n_bins)),
                k_sqrt_w_flat[:size].reshape((bin_pixels, n_bins)),
                sum_wf[:n_bins], sum_w[:n_bins], level[:n_bins], scaled[:n_bins], scratch,
                w_pixels[:size], wf_pixels[:size])
        column = 0
        n_good = 0
        for a in range(len(fluxes)):
            n_pixels = fluxes[a].shape[1]
            n_good += _snr_of_row(fluxes[a][row], ivars[a][row], masks[a][row],
                                  ratios[column:column + n_pixels])
            column += n_pixels
        snr[row] = _median_of_row(ratios, n_good, keys, candidates, histograms)
        good_fraction[row] = _merge_and_shift_row(
            weighted, total, low, high, scale[row], shift[row], rest_frame_ok[row],
            out_flux[row], out_ivar[row], out_mask[row], packed_flux, packed_var, left_index,
            fraction, inside)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def standardise_and_distance(flux, ivar, mask, median, iqr, spread, inputs, distance,
                             iqr2, min_input_ivar, input_ivar):
    """``nn.predict.standardise`` into ``inputs`` and ``nn.predict.input_distance`` into
    ``distance`` in one pass; ``spread = (iqr / 1.349)^2`` float32. When ``input_ivar`` has
    rows (else shape (0, n_pixels)), ``nn.predict.input_inverse_variance`` into it too
    (``iqr2 = iqr^2`` and the floor given).

    Branch-free, and the distance's float64 sum may be reassociated (``fastmath``: only the
    order of its additions changes), so the pixel loop vectorises."""
    n, n_pixels = flux.shape
    with_ivar = input_ivar.shape[0] == n
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for row in range(n):
        acc = 0.0
        n_good = 0
        for p in range(n_pixels):
            bad = mask[row, p]
            diff = flux[row, p] - median[p]
            inputs[row, p] = zero if bad else diff / iqr[p]
            variance = spread[p] + one / ivar[row, p]
            acc += zero if bad else (diff * diff) / variance
            n_good += not bad
        if with_ivar:
            for p in range(n_pixels):
                scaled = max(ivar[row, p] * iqr2[p], min_input_ivar)
                input_ivar[row, p] = zero if mask[row, p] else scaled
        distance[row] = acc / n_good if n_good > 0 else np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _snr_of_row(flux, ivar, mask, out):
    """``out = flux * sqrt(ivar)`` (float32) at good pixels (finite flux and ivar, ivar > 0,
    mask 0), +inf elsewhere (sorted after every good value), for one spectrum's arm (1-d,
    contiguous); returns the number of good pixels."""
    inf = np.float32(np.inf)
    count = 0
    for p in range(flux.size):
        f = flux[p]
        v = ivar[p]
        # & (not "and"): no branches, so the loop vectorises
        good = np.isfinite(f) & np.isfinite(v) & (v > 0) & (mask[p] == 0)
        out[p] = np.float32(math.sqrt(v)) * f if good else inf
        count += good
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def snr_per_pixel(flux, ivar, mask, out, column, n_good):
    """:func:`_snr_of_row` of every row into ``out[:, column:column + n_pixels]`` (``out``
    whole and C-ordered with a column offset, not a column slice: unit strides let the loop
    vectorise); ``n_good += good pixels`` per row. The first half of
    :func:`spectra.median_snr`."""
    n, n_pixels = flux.shape
    for row in range(n):
        n_good[row] += _snr_of_row(flux[row], ivar[row], mask[row],
                                   out[row, column:column + n_pixels])


_RADIX_LEVELS = ((21, 2048), (10, 2048), (0, 1024))
"""(shift, bins) of the three radix levels over a 32-bit key: bits 31-21, 20-10, 9-0."""


@njit(cache=True, nogil=True, error_model="numpy")
def _sortable_keys(values, keys):
    """uint32 keys of float32 ``values`` whose unsigned order is the values' order (NaN-free
    input; -0 sorts just before +0)."""
    bits = values.view(np.uint32)
    for p in range(values.size):
        b = bits[p]
        keys[p] = ~b if b >> np.uint32(31) else b | np.uint32(0x80000000)


@njit(cache=True, nogil=True, error_model="numpy")
def _value_of_key(key):
    """The float32 whose :func:`_sortable_keys` key is ``key``."""
    bits = np.empty(1, np.uint32)
    bits[0] = key & np.uint32(0x7FFFFFFF) if key >> np.uint32(31) else ~key
    return bits.view(np.float32)[0]


@njit(cache=True, nogil=True, error_model="numpy")
def _select_key(keys, rank, candidates, histograms):
    """The ``rank``-th smallest (0-based) of ``keys``, by radix selection: three
    passes, each histogramming (4 interleaved sub-histograms, so runs of equal bins do not
    stall on one counter) only the keys that share the previous levels' bits.

    Returns ``(key, below, equal)``: the key, how many keys are smaller and how many equal."""
    prefix = np.uint32(0)
    high_mask = np.uint32(0)
    n = keys.size
    source = keys
    below = 0
    count = 0
    for level in range(3):
        shift = np.uint32(_RADIX_LEVELS[level][0])
        n_bins = _RADIX_LEVELS[level][1]
        bin_mask = np.uint32(n_bins - 1)
        histograms[:, :n_bins] = 0
        if level > 0:  # keep the keys with the chosen high bits (branch-free compaction)
            m = 0
            for p in range(n):
                key = source[p]
                candidates[m] = key
                m += (key & high_mask) == prefix
            n = m
            source = candidates
        for p in range(n):
            histograms[p & 3, (source[p] >> shift) & bin_mask] += 1
        cumulative = 0
        chosen = 0
        count = 0
        for b in range(n_bins):
            count = (histograms[0, b] + histograms[1, b] + histograms[2, b] + histograms[3, b])
            if cumulative + count > rank:
                chosen = b
                break
            cumulative += count
        rank -= cumulative
        below += cumulative
        prefix |= np.uint32(chosen) << shift
        high_mask |= bin_mask << shift
    return prefix, below, count  # count: keys in the last level's bin, all equal to prefix


@njit(cache=True, nogil=True, error_model="numpy")
def _median_of_row(values, count, keys, candidates, histograms):
    """Median of the ``count`` smallest of ``values`` (1-d float32; the rest +inf): the mean
    of the two middle values in float32, as ``np.median``; 0 when ``count`` is 0. Exact (a
    radix selection, no sort). Work arrays: ``keys``, ``candidates`` (values.size,) uint32,
    ``histograms`` (4, 2048) int32."""
    if count <= 0:
        return np.float32(0.0)
    n_pixels = values.size
    _sortable_keys(values, keys)
    low_rank = (count - 1) // 2
    low, below, equal = _select_key(keys, low_rank, candidates, histograms)
    high = low
    if count % 2 == 0 and low_rank + 1 >= below + equal:  # the next larger key
        high = top = np.uint32(0xFFFFFFFF)
        for p in range(n_pixels):  # the smallest key above low (a min: it vectorises)
            key = keys[p]
            high = min(high, key if key > low else top)
    return (_value_of_key(low) + _value_of_key(high)) / np.float32(2.0)


@njit(cache=True, nogil=True, error_model="numpy")
def median_of_rows(values, n_good, out):
    """:func:`_median_of_row` of each row of ``values`` with ``n_good[row]`` good values: the
    second half of :func:`spectra.median_snr`."""
    n, n_pixels = values.shape
    keys = np.empty(n_pixels, np.uint32)
    candidates = np.empty(n_pixels, np.uint32)
    histograms = np.empty((4, 2048), np.int32)
    for row in range(n):
        out[row] = _median_of_row(values[row], n_good[row], keys, candidates, histograms)
