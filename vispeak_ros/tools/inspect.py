"""vispeak-inspect: load a ViSpeak checkpoint strictly and print what it holds, or the one-line reason it cannot.

Usage: vispeak-inspect PATH [--vision-tower DIR] [--audio-encoder DIR] [--dtype auto|float32|float16|bfloat16]
Exit status 0 when the checkpoint loads, 1 when it does not (one line on stderr), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys

DTYPES = ("auto", "float32", "float16", "bfloat16")
PARTS = ("llm", "vision_tower", "mm_projector", "audio_encoder", "fusion", "informative_head")


def summary(model) -> list[str]:
    """Lines describing a loaded model: kind, parameters per part, dtype, settings, special token ids."""
    cfg, info = model.config, model.checkpoint_info
    lines = [f"checkpoint: {info.path}"]
    lines.append(
        f"kind: ViSpeak (model_type {cfg.model_type!r}; two-stream fusion weights"
        + (" and informative head present)" if model.informative_head is not None else " present, no informative head)")
    )
    lines.append(
        f"weights: {len(info.weight_files)} safetensors file(s), dtype {str(info.dtype).removeprefix('torch.')}"
    )
    total = 0
    for part in PARTS:
        module = getattr(model, part, None)
        count = sum(p.numel() for p in module.parameters()) if module is not None else 0
        total += count
        lines.append(f"  {part:17s} {count:>15,d} parameters")
    lines.append(f"  {'total':17s} {total:>15,d} parameters")
    llm = cfg.llm
    lines.append(
        f"llm: Qwen2, {llm.num_hidden_layers} layers, hidden {llm.hidden_size}, {llm.num_attention_heads} heads "
        f"/ {llm.num_key_value_heads} kv, intermediate {llm.intermediate_size}, vocab {llm.vocab_size}, "
        f"rope_theta {llm.rope_parameters['rope_theta']:g}"
    )
    lines.append(
        f"fusion: {cfg.combination}; projector {cfg.mm_projector_type} ({cfg.mm_hidden_size} -> {llm.hidden_size}); "
        f"pooling {cfg.pooling_size}"
    )
    if cfg.vision is not None:
        v = cfg.vision
        lines.append(
            f"vision: InternViT, {v.num_hidden_layers} layers, hidden {v.hidden_size}, {v.num_attention_heads} heads, "
            f"{v.image_size} px / patch {v.patch_size} -> {cfg.tokens_per_frame} tokens per frame "
            f"({info.vision_folder})"
        )
    if cfg.audio is not None:
        a = cfg.audio
        chunk = f"chunk {a.chunk_size} x {a.left_chunks} left" if a.chunk_size > 0 else "full attention"
        lines.append(
            f"audio: whale, {a.num_blocks} blocks, dim {a.attention_dim}, {a.attention_heads} heads, "
            f"{a.pos_enc_class}, {chunk}; fbank {a.fbank.num_mel_bins} bins "
            f"{a.fbank.frame_length_ms:g}/{a.fbank.frame_shift_ms:g} ms "
            f"({info.audio_folder})"
        )
    if model.tokenizer is None:
        lines.append("tokenizer: none")
    else:
        s = model.tokenizer.special_tokens()
        lines.append(
            f"tokenizer: {len(model.tokenizer)} tokens; seg '>Note'={s.seg} pad={s.pad} im_end={s.im_end} "
            f"markers ☜={s.text_answer} ☞={s.audio_answer} ☟={s.proactive}"
        )
    lines += [f"note: {note}" for note in info.notes if not note.startswith("tokenizer: none")]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vispeak-inspect", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="checkpoint directory (config.json + model.safetensors or shards + index)")
    parser.add_argument("--vision-tower", help="local InternViT-300M-448px folder (default: from config.json)")
    parser.add_argument("--audio-encoder", help="local VITA-1.5 audio-encoder folder (default: from config.json)")
    parser.add_argument("--dtype", choices=DTYPES, default="auto", help="convert weights (default: as stored)")
    args = parser.parse_args(argv)

    import torch  # heavy imports only after the arguments are known to be fine

    from vispeak_ros.model import CheckpointError, load_checkpoint

    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    try:
        model = load_checkpoint(
            args.path, dtype=dtype, vision_tower=args.vision_tower, audio_encoder=args.audio_encoder
        )
        lines = summary(model)
    except CheckpointError as exc:
        print(f"vispeak-inspect: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
