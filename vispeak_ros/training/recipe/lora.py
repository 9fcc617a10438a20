"""LoRA on the LLM through `peft`, in place, and merge-and-unload before saving.

`peft.LoraModel` injects LoRA layers into `model.llm` itself (the stock Qwen2ForCausalLM keeps its attribute paths,
so `ViSpeakForCausalLM` runs unchanged) and freezes the LLM's base weights. The official run targets every linear
layer of the LLM except lm_head; multimodal modules, the fusion gate and the informative head get none. Merging
folds B @ A * alpha / r into the base weights, so the saved checkpoint has the published key layout.
"""

from __future__ import annotations

import torch

from vispeak_ros.model.vispeak import ViSpeakForCausalLM
from vispeak_ros.training.recipe.stages import LoraSpec

ADAPTER = "default"


def apply_lora(model: ViSpeakForCausalLM, spec: LoraSpec) -> None:
    """Wrap the LLM's target linears with LoRA adapters (trainable); the base LLM weights are frozen."""
    from peft import LoraConfig, LoraModel

    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.targets),
        bias="none",
    )
    # Kept outside the module tree (not a registered child): its parameters are model.llm's, listed once.
    model.__dict__["lora"] = LoraModel(model.llm, config, ADAPTER)  # injects into model.llm in place


def has_lora(model: ViSpeakForCausalLM) -> bool:
    return getattr(model, "lora", None) is not None


def lora_parameters(model: ViSpeakForCausalLM) -> int:
    return sum(p.numel() for n, p in model.llm.named_parameters() if "lora_" in n)


@torch.no_grad()
def merge_lora(model: ViSpeakForCausalLM) -> ViSpeakForCausalLM:
    """Fold the adapters into the base weights and remove them (the model then has plain Linear layers)."""
    lora = getattr(model, "lora", None)
    if lora is None:
        return model
    model.llm = lora.merge_and_unload()
    del model.__dict__["lora"]
    return model
