"""User segmentation: scaled features into KMeans (k by silhouette) or DBSCAN."""

from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.cluster import DBSCAN, KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

logger = logging.getLogger(__name__)


def cluster_scores(
    X: np.ndarray, labels: np.ndarray, *, sample_size: int | None, random_state: int | None
) -> dict[str, float | None]:
    """Silhouette (on a sample when large), Calinski–Harabasz and Davies–Bouldin.

    None where a score is undefined (fewer than two clusters, or every point its own).
    """
    kept = labels >= 0
    X, labels = X[kept], labels[kept]
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(X):
        return {"silhouette": None, "calinski_harabasz": None, "davies_bouldin": None}
    sample = sample_size if sample_size is not None and sample_size < len(X) else None
    return {
        "silhouette": float(silhouette_score(X, labels, sample_size=sample, random_state=random_state)),
        "calinski_harabasz": float(calinski_harabasz_score(X, labels)),
        "davies_bouldin": float(davies_bouldin_score(X, labels)),
    }


def knee_eps(X: np.ndarray, *, min_samples: int) -> float:
    """DBSCAN's eps from the k-distance curve: its knee (farthest from the chord), with a margin.

    The knee marks where distances start to rise; points right at the bend belong to their
    cluster's fringe, so eps is 1.5 times the knee distance (on two moons the bare knee
    splits a moon in three, the margin keeps it whole).
    """
    k = min(min_samples, len(X) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    curve = np.sort(distances[:, -1])
    if len(curve) < 3 or curve[-1] == curve[0]:
        return float(max(curve[-1], 1e-6))
    x = np.linspace(0.0, 1.0, len(curve))
    y = (curve - curve[0]) / (curve[-1] - curve[0])
    knee = int(np.argmax(x - y))
    return float(max(1.5 * curve[knee], 1e-6))


def share_scales(scaler: StandardScaler, groups: tuple[tuple[int, ...], ...]) -> None:
    """Give each group of columns one scale: the square root of their summed variances.

    The one-hot columns of a categorical trait are one variable: standardised one by one, a
    rare category (7% on the team plan) would sit 3.6 units from the mean and outweigh every
    behaviour feature. Sharing sqrt(Σ p(1 − p)) makes the whole trait weigh as one feature.
    """
    for group in groups:
        columns = list(group)
        total = float(np.sum(scaler.var_[columns]))
        if total > 10 * np.finfo(np.float64).eps:
            scaler.scale_[columns] = np.sqrt(total)


class UserSegmenter(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """Standard-scale the features, then cluster: KMeans with k by silhouette, or DBSCAN.

    KMeans tries every k in `k_min..k_max` and keeps the best silhouette (computed on a
    sample of `silhouette_sample` rows when the population is larger); past
    `minibatch_threshold` rows MiniBatchKMeans replaces KMeans so a million users stay
    fast. DBSCAN suits non-spherical groups; its eps comes from the k-distance knee when
    not given, and past `dbscan_max_samples` rows it is fitted on a sample and the rest
    join their nearest core point's cluster (or noise, -1). `column_groups` (column indices)
    share one scale each (`share_scales`): the one-hot columns of one categorical trait.

    Attributes:
        scaler_: The fitted StandardScaler.
        model_: The fitted clustering model.
        labels_: Segment label per training row (-1 = DBSCAN noise).
        n_clusters_: How many segments (noise excluded).
        cluster_centers_: Segment centres in scaled space.
        k_scores_: Per k tried: silhouette, Calinski–Harabasz and Davies–Bouldin.
        scores_: The same three for the chosen model.
        eps_: The eps DBSCAN used (None for KMeans).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "algorithm": [StrOptions({"kmeans", "dbscan"})],
        "k_min": [Interval(Integral, 1, None, closed="left")],
        "k_max": [Interval(Integral, 1, None, closed="left")],
        "silhouette_sample": [Interval(Integral, 2, None, closed="left")],
        "minibatch_threshold": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, None, closed="neither"), None],
        "min_samples": [Interval(Integral, 1, None, closed="left"), None],
        "dbscan_max_samples": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "column_groups": [tuple, None],
    }

    def __init__(
        self,
        *,
        algorithm: str = "kmeans",
        k_min: int = 2,
        k_max: int = 8,
        silhouette_sample: int = 3_000,
        minibatch_threshold: int = 50_000,
        eps: float | None = None,
        min_samples: int | None = None,
        dbscan_max_samples: int = 20_000,
        random_state: int | None = 0,
        column_groups: tuple[tuple[int, ...], ...] | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.k_min = k_min
        self.k_max = k_max
        self.silhouette_sample = silhouette_sample
        self.minibatch_threshold = minibatch_threshold
        self.eps = eps
        self.min_samples = min_samples
        self.dbscan_max_samples = dbscan_max_samples
        self.random_state = random_state
        self.column_groups = column_groups

    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def fit(self, X: Any, y: Any = None) -> UserSegmenter:
        """Scale and cluster `X` (n_users × n_features); returns self."""
        X = validate_data(self, X, dtype=np.float64)
        if self.k_min > self.k_max:
            raise ValueError(f"k_min={self.k_min} should be <= k_max={self.k_max}")
        self.scaler_ = StandardScaler().fit(X)
        share_scales(self.scaler_, self.column_groups or ())
        Z = self.scaler_.transform(X)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        if self.algorithm == "dbscan":
            self._fit_dbscan(Z, seed)
        else:
            self._fit_kmeans(Z, seed)
        chosen = self.k_scores_.get(self.n_clusters_) if self.algorithm == "kmeans" else None
        self.scores_ = chosen or cluster_scores(
            Z, self.labels_, sample_size=self.silhouette_sample, random_state=seed
        )
        return self

    def _kmeans(self, k: int, n: int, seed: int) -> KMeans | MiniBatchKMeans:
        if n > self.minibatch_threshold:
            return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
        return KMeans(n_clusters=k, random_state=seed, n_init=3)

    def _fit_kmeans(self, Z: np.ndarray, seed: int) -> None:
        n = len(Z)
        distinct = len(np.unique(Z, axis=0)) if n <= 100_000 else n
        k_max = min(self.k_max, n - 1, distinct)
        self.k_scores_: dict[int, dict[str, float | None]] = {}
        self.eps_: float | None = None
        if k_max < max(self.k_min, 2):
            # One user, identical users or k_max=1: a single segment is the honest answer.
            self.model_: Any = None
            self.labels_ = np.zeros(n, dtype=np.int64)
            self.cluster_centers_ = Z.mean(axis=0, keepdims=True)
            self.n_clusters_ = 1
            return
        best: tuple[float, int, Any] | None = None
        for k in range(max(self.k_min, 2), k_max + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = self._kmeans(k, n, seed).fit(Z)
            scores = cluster_scores(Z, model.labels_, sample_size=self.silhouette_sample, random_state=seed)
            self.k_scores_[k] = scores
            silhouette = scores["silhouette"]
            logger.debug("k=%d silhouette=%s", k, silhouette)
            if silhouette is not None and (best is None or silhouette > best[0]):
                best = (silhouette, k, model)
        if best is None:
            self.model_ = None
            self.labels_ = np.zeros(n, dtype=np.int64)
            self.cluster_centers_ = Z.mean(axis=0, keepdims=True)
            self.n_clusters_ = 1
            return
        self.model_ = best[2]
        self.labels_ = np.asarray(self.model_.labels_, dtype=np.int64)
        self.cluster_centers_ = np.asarray(self.model_.cluster_centers_)
        self.n_clusters_ = best[1]

    def _fit_dbscan(self, Z: np.ndarray, seed: int) -> None:
        n = len(Z)
        min_samples = self.min_samples or max(2 * Z.shape[1], 2)
        rng = np.random.default_rng(seed)
        fit_rows = np.arange(n)
        if n > self.dbscan_max_samples:
            fit_rows = np.sort(rng.choice(n, size=self.dbscan_max_samples, replace=False))
        sample = Z[fit_rows]
        self.eps_ = self.eps if self.eps is not None else knee_eps(sample, min_samples=min_samples)
        self.k_scores_ = {}
        self.model_ = DBSCAN(eps=self.eps_, min_samples=min(min_samples, len(sample))).fit(sample)
        self.labels_ = self._assign(Z) if n > len(sample) else np.asarray(self.model_.labels_, np.int64)
        found = sorted(set(self.labels_.tolist()) - {-1})
        self.n_clusters_ = len(found)
        width = Z.shape[1]
        self.cluster_centers_ = (
            np.vstack([Z[self.labels_ == c].mean(axis=0) for c in found]) if found else np.empty((0, width))
        )

    def _assign(self, Z: np.ndarray) -> np.ndarray:
        """Label rows by their nearest DBSCAN core sample (noise when farther than eps)."""
        model: Any = self.model_
        core = model.components_
        if len(core) == 0:
            return np.full(len(Z), -1, dtype=np.int64)
        core_labels = model.labels_[model.core_sample_indices_]
        distances, index = NearestNeighbors(n_neighbors=1).fit(core).kneighbors(Z)
        labels = core_labels[index[:, 0]].astype(np.int64)
        labels[distances[:, 0] > self.eps_] = -1
        return np.asarray(labels)

    def predict(self, X: Any) -> np.ndarray:
        """The segment of new rows: nearest centre (KMeans) or nearest core point (DBSCAN)."""
        check_is_fitted(self, "labels_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = self.scaler_.transform(X)
        if self.algorithm == "dbscan":
            return self._assign(Z)
        if self.model_ is None:
            return np.zeros(len(Z), dtype=np.int64)
        return np.asarray(self.model_.predict(Z), dtype=np.int64)
