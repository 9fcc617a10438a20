"""The paper's three-stage ViSpeak recipe (connector alignment, stage 1 offline omni, stage 2 streaming with the
informative head, stage 3 ViSpeak-Instruct) on our model layer, run with `accelerate` (and DeepSpeed through it).

formats: official annotation items -> two-stream rows; media: decoding; dataset: manifests and batches;
stages: what trains per stage; lora: peft LoRA and merge; run: the training loop; cli: `vispeak-train --stage N`.
"""
