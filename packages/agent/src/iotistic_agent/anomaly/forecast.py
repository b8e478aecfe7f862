"""The optional forecasting model of anomaly detection: a small online LSTM per series, in numpy.

Only imported when ``ANOMALY_ML_ENABLED`` is set (through ``anomaly/ml.py``), and only with
the ``ml`` extra installed (``pip install iotistic-agent[ml]``, which adds numpy alone).

Why numpy and not PyTorch (or TensorFlow, ONNX): the model is tiny (one layer, 8 hidden units,
329 weights) and learns online, one point at a time, on the device itself. A deep-learning
framework is several hundred MB to several GB installed, has no wheel or a slow one for a
Raspberry Pi's 32-bit ARM, takes seconds and tens of MB to import, and its per-call overhead on
tensors of this size is larger than the arithmetic. numpy is one wheel of about 20 MB that
exists for every platform the agent runs on, and the forward and backward passes below are
twenty lines each, checked against numerical differentiation in the tests.

The model. Input: the last ``k`` values of the series (16), normalised by a running mean and
scale so one model shape fits CPU percentages and byte counters alike, fed one per step into
an LSTM cell from a zero state. Output: the next normalised value, as the last input plus a
linear read-out of the final hidden state (so an untrained model forecasts "no change").
Training: after every ``train_every`` points, one step of Adam on the squared error of the
forecast (Huber-clipped, so one spike cannot yank the weights) with backpropagation through
the ``k`` steps of the window (truncated backpropagation through time) and global gradient-norm
clipping. The residual scale is an EWMA of ``|x - forecast|``; a residual is reported in sigma
units against it (floored like the statistical detectors: a flat or quantised series must not
alert on one step). No alerts before ``warmup`` trained points.

Cost (bench/README.md): memory per series is the weights, their gradient and Adam's two
moments (329 float64 each; the gradient is transient) plus the raw window and a handful of
floats: 10.4 KiB measured with tracemalloc. Time: one forward pass over 16 steps per point
(about 130 us) and one backward pass per training step (about 190 us): some 340 us per point
in CPython on one core, so ``AnomalyConfig.ml_max_series`` (256) bounds the total.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

MEAN_ABS_TO_SIGMA = 1.2533  # mean absolute deviation of a normal is 0.7979 sigma
RELATIVE_FLOOR = 1e-3  # as detector.py: 0.1 % of the level
ABSOLUTE_FLOOR = 1e-9
RESIDUAL_SHARE_FLOOR = 0.1  # the residual scale is at least this share of the series' scale
INPUT_CLIP = 8.0  # normalised inputs and targets are clipped to +-this many scales
HUBER = 1.0  # forecast errors beyond this (normalised) count linearly in the loss
RESIDUAL_CLIP = 4.0  # a residual moves the residual scale by at most this many scales
# An outlier enters the window as its forecast (so the next forecast does not echo it), for at
# most this many points in a row; after that the series has moved and its values count again.
MAX_SUBSTITUTED = 3


class Cache(NamedTuple):
    """What the backward pass needs from the forward pass over one window."""

    inputs: Array  # (k,) normalised inputs
    gates: Array  # (k, 4H) activated gates i, f, o, g
    cells: Array  # (k + 1, H) cell states, row 0 the zero start
    hiddens: Array  # (k + 1, H) hidden states, row 0 the zero start
    tanh_cells: Array  # (k, H)


class LSTM:
    """One LSTM layer over a scalar sequence, with a linear read-out added to the last input.

    All parameters live in one flat vector ``theta`` (views give W, b, v, c) so the optimiser
    and the gradient clipping are one vector operation each.
    """

    def __init__(self, hidden: int = 8, seed: int = 0) -> None:
        h = hidden
        self.hidden = h
        n_w = 4 * h * (1 + h)
        self.size = n_w + 4 * h + h + 1
        self.theta: Array = np.zeros(self.size)
        self.W = self.theta[:n_w].reshape(4 * h, 1 + h)  # gates from [x, h_prev]
        self.b = self.theta[n_w : n_w + 4 * h]
        self.v = self.theta[n_w + 4 * h : n_w + 5 * h]  # read-out
        self.c = self.theta[n_w + 5 * h :]  # read-out bias, shape (1,)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(h)
        self.W[:] = rng.uniform(-bound, bound, self.W.shape)
        self.b[h : 2 * h] = 1.0  # forget gate open at the start
        self.v[:] = rng.uniform(-0.1, 0.1, h)

    def forward(self, inputs: Array) -> tuple[float, Cache]:
        h = self.hidden
        k = inputs.shape[0]
        W = self.W
        w_h = W[:, 1:]
        # The input's share of every step's gate pre-activations at once.
        pre = np.outer(inputs, W[:, 0]) + self.b
        gates = np.empty((k, 4 * h))
        cells = np.zeros((k + 1, h))
        hiddens = np.zeros((k + 1, h))
        tanh_cells = np.empty((k, h))
        for t in range(k):
            z = pre[t] + w_h @ hiddens[t]
            a = gates[t]
            a[: 3 * h] = 1.0 / (1.0 + np.exp(-z[: 3 * h]))
            a[3 * h :] = np.tanh(z[3 * h :])
            cells[t + 1] = a[h : 2 * h] * cells[t] + a[:h] * a[3 * h :]
            tc = tanh_cells[t]
            tc[:] = np.tanh(cells[t + 1])
            hiddens[t + 1] = a[2 * h : 3 * h] * tc
        y = float(inputs[-1] + self.v @ hiddens[k] + self.c[0])
        return y, Cache(inputs, gates, cells, hiddens, tanh_cells)

    def backward(self, cache: Cache, dy: float) -> Array:
        """Gradient of the loss with respect to ``theta``, given dLoss/dy."""
        h = self.hidden
        inputs, gates, cells, hiddens, tanh_cells = cache
        k = inputs.shape[0]
        grad = np.zeros(self.size)
        n_w = 4 * h * (1 + h)
        dW = grad[:n_w].reshape(4 * h, 1 + h)
        grad[n_w + 4 * h : n_w + 5 * h] = dy * hiddens[k]
        grad[n_w + 5 * h] = dy
        dh = dy * self.v
        dc = np.zeros(h)
        dz = np.empty((k, 4 * h))
        w_h_t = self.W[:, 1:].T
        for t in range(k - 1, -1, -1):
            a = gates[t]
            i, f, o, g = a[:h], a[h : 2 * h], a[2 * h : 3 * h], a[3 * h :]
            tc = tanh_cells[t]
            dc = dc + dh * o * (1.0 - tc * tc)
            d = dz[t]
            d[:h] = dc * g * i * (1.0 - i)
            d[h : 2 * h] = dc * cells[t] * f * (1.0 - f)
            d[2 * h : 3 * h] = dh * tc * o * (1.0 - o)
            d[3 * h :] = dc * i * (1.0 - g * g)
            dh = w_h_t @ d
            dc = dc * f
        dW[:, 0] = inputs @ dz
        dW[:, 1:] = dz.T @ hiddens[:k]
        grad[n_w : n_w + 4 * h] = dz.sum(axis=0)
        return grad

    def loss(self, inputs: Array, target: float) -> float:
        """Half the squared error of the forecast (the training loss below the Huber clip)."""
        y, _ = self.forward(inputs)
        return 0.5 * (y - target) ** 2


class Adam:
    def __init__(self, size: int, lr: float = 0.01, clip: float = 1.0) -> None:
        self.lr = lr
        self.clip = clip
        self.m: Array = np.zeros(size)
        self.s: Array = np.zeros(size)
        self.t = 0

    def step(self, theta: Array, grad: Array, b1: float = 0.9, b2: float = 0.999) -> None:
        norm = math.sqrt(float(grad @ grad))
        if norm > self.clip:
            grad *= self.clip / norm
        self.t += 1
        self.m *= b1
        self.m += (1.0 - b1) * grad
        self.s *= b2
        self.s += (1.0 - b2) * grad * grad
        lr = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        theta -= lr * self.m / (np.sqrt(self.s) + 1e-8)


class LSTMForecaster:
    """Online forecaster for one series: ``predict()`` the next value, then ``update(x)``.

    ``sigma(x)`` is the residual of ``x`` against the last forecast in sigma units; ``ready``
    says whether it may alert (trained on ``warmup`` points and its residual scale settled).
    """

    __slots__ = (
        "_alpha",
        "_cache",
        "_forecast",
        "_last",
        "_mean",
        "_quantum",
        "_res_alpha",
        "_residual",
        "_residual_n",
        "_scale",
        "_seen",
        "_substituted",
        "_values",
        "k",
        "model",
        "optimiser",
        "train_every",
        "trained",
        "warmup",
    )

    def __init__(
        self,
        k: int = 16,
        hidden: int = 8,
        *,
        lr: float = 0.003,
        train_every: int = 1,
        warmup: int = 300,
        horizon: int = 100,
        seed: int = 0,
    ) -> None:
        self.k = k
        self.model = LSTM(hidden, seed)
        self.optimiser = Adam(self.model.size, lr)
        self.train_every = train_every
        self.warmup = warmup
        self.trained = 0
        self._values: deque[float] = deque(maxlen=k)
        self._alpha = 1.0 / horizon  # running mean and scale follow about `horizon` points
        self._res_alpha = 1.0 / horizon
        self._seen = 0
        self._mean = 0.0
        self._scale = 0.0  # EWMA of |x - mean|
        self._quantum = math.inf
        self._last: float | None = None
        self._residual = 0.0  # EWMA of |x - forecast|, original units
        self._residual_n = 0
        self._cache: Cache | None = None
        self._forecast: float | None = None
        self._substituted = 0

    @property
    def ready(self) -> bool:
        return self.trained >= self.warmup and self._residual_n * self._res_alpha >= 3.0

    def _floor(self) -> float:
        floor = RELATIVE_FLOOR * abs(self._mean)
        if self._quantum != math.inf and self._quantum > floor:
            floor = self._quantum
        return floor if floor > ABSOLUTE_FLOOR else ABSOLUTE_FLOOR

    def _norm_scale(self) -> float:
        scale = MEAN_ABS_TO_SIGMA * self._scale
        floor = self._floor()
        return scale if scale > floor else floor

    def residual_scale(self) -> float:
        """The expected |x - forecast| in sigma units' denominator (original units)."""
        scale = MEAN_ABS_TO_SIGMA * self._residual
        floor = max(RESIDUAL_SHARE_FLOOR * self._norm_scale(), self._floor())
        return scale if scale > floor else floor

    def _inputs(self) -> Array:
        scale = self._norm_scale()
        u = (np.fromiter(self._values, float, self.k) - self._mean) / scale
        return np.clip(u, -INPUT_CLIP, INPUT_CLIP, out=u)

    def predict(self) -> float | None:
        """The next value expected, or None before ``k`` values were seen."""
        if self._forecast is None and len(self._values) == self.k:
            y, self._cache = self.model.forward(self._inputs())
            self._forecast = self._mean + self._norm_scale() * y
        return self._forecast

    def sigma(self, x: float) -> float:
        forecast = self.predict()
        if forecast is None:
            return 0.0
        return abs(x - forecast) / self.residual_scale()

    def update(self, x: float, *, outlier: bool = False) -> None:
        """Learn from ``x``: the residual scale, one training step, then the normalisation.

        ``outlier``: ``x`` was reported as an anomaly; it is neither trained on nor kept in
        the window (its forecast is), up to MAX_SUBSTITUTED points in a row.
        """
        forecast = self.predict()
        if outlier and forecast is not None and self._substituted < MAX_SUBSTITUTED:
            self._substituted += 1
            x = forecast
            forecast = None
        else:
            self._substituted = 0
        if forecast is not None and self._cache is not None:
            scale = self._norm_scale()
            residual = abs(x - forecast)
            limit = RESIDUAL_CLIP * self.residual_scale() if self._residual_n else residual
            if residual > limit:
                residual = limit
            self._residual_n += 1
            alpha = max(self._res_alpha, 1.0 / self._residual_n)
            self._residual += alpha * (residual - self._residual)
            if self._seen % self.train_every == 0:
                target = (x - self._mean) / scale
                target = max(-INPUT_CLIP, min(INPUT_CLIP, target))
                y = (forecast - self._mean) / scale
                error = max(-HUBER, min(HUBER, y - target))
                grad = self.model.backward(self._cache, error)
                self.optimiser.step(self.model.theta, grad)
                self.trained += 1
        self._cache = None
        self._forecast = None
        # Normalisation statistics, then the window.
        self._seen += 1
        last = self._last
        if last is not None:
            step = abs(x - last)
            if step > 1e-12 * abs(x) and step < self._quantum:
                self._quantum = step
        self._last = x
        alpha = max(self._alpha, 1.0 / self._seen)
        self._mean += alpha * (x - self._mean)
        self._scale += alpha * (abs(x - self._mean) - self._scale)
        self._values.append(x)

    @property
    def nbytes(self) -> int:
        """Bytes held in numpy arrays between points (weights, Adam's moments)."""
        return int(self.model.theta.nbytes + self.optimiser.m.nbytes + self.optimiser.s.nbytes)
