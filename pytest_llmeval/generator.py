"""``llm_generator``: a plain callable over a model, for Python tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeval.errors import ModelError
from pytest_llmeval.models.base import GenerationParams, GenerationRequest, Model, Prompt


class Generator:
    """``gen(prompt, **params) -> str``; ``gen.batch(prompts, **params) -> list[str]``.

    Params are :class:`~pytest_llmeval.models.base.GenerationParams` fields
    (``max_new_tokens``, ``temperature``, ``stop``...). A failed generation raises.
    """

    def __init__(self, model: Model) -> None:
        self.model = model

    def __call__(self, prompt: Prompt, **params: Any) -> str:
        return self.batch([prompt], **params)[0]

    def batch(self, prompts: Sequence[Prompt], **params: Any) -> list[str]:
        try:
            gp = GenerationParams.from_dict(params)
        except TypeError as exc:
            raise ModelError(f"llm_generator: invalid generation parameter ({exc}); use "
                             f"{', '.join(GenerationParams.__dataclass_fields__)}") from None
        outs = self.model.generate([GenerationRequest(prompt=p, params=gp) for p in prompts])
        result = []
        for o in outs:
            if isinstance(o, BaseException):
                raise ModelError(f"{self.model.name}: generation failed: {o}") from o
            result.append(o)
        return result

    def __repr__(self) -> str:
        return f"<llm_generator over {self.model!r}>"
