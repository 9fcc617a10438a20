"""Fusion variants, the informative head, and the variants' round trip through a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from vispeak_ros.model import SpecialTokens, StreamingSession, load_checkpoint
from vispeak_ros.model.fusion import StreamFusion
from vispeak_ros.model.heads import InformativeHead
from vispeak_ros.model.tiny import tiny_model

H = 8


def streams(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(5, H, generator=gen), torch.randn(5, H, generator=gen)


def test_adaptive_combine_weights_the_agent_by_the_sigmoid_of_the_gate_on_agent_then_user():
    fusion = StreamFusion("adaptive_combine", H)
    agent, user = streams()
    w = torch.sigmoid(fusion.gate(torch.cat([agent, user], dim=-1)))
    torch.testing.assert_close(fusion(agent, user), w * agent + (1 - w) * user)
    torch.testing.assert_close(fusion.gate_logit(agent, user), fusion.gate(torch.cat([agent, user], -1)))


def test_user_first_order_swaps_operands_and_weights():
    fusion = StreamFusion("adaptive_combine", H)
    agent, user = streams(1)
    w = torch.sigmoid(fusion.gate(torch.cat([user, agent], dim=-1)))
    torch.testing.assert_close(fusion(agent, user, order="user_first"), w * user + (1 - w) * agent)
    with pytest.raises(ValueError, match="fusion order"):
        fusion(agent, user, order="sideways")


def test_linear_combine_is_one_linear_on_agent_then_user():
    fusion = StreamFusion("linear_combine", H)
    with torch.no_grad():  # the authors' initialisation: pass the agent stream through
        fusion.gate.weight.copy_(torch.cat([torch.eye(H), torch.zeros(H, H)], dim=1))
    agent, user = streams(2)
    torch.testing.assert_close(fusion(agent, user), agent)
    assert fusion.gate.bias is None


def test_add_is_the_mean_and_has_no_weights():
    fusion = StreamFusion("add", H)
    agent, user = streams(3)
    torch.testing.assert_close(fusion(agent, user), (agent + user) / 2)
    assert list(fusion.parameters()) == []


def test_informative_head_shape_and_last_layer_without_bias():
    head = InformativeHead(H)
    assert head[0].out_features == H // 2 and head[2].bias is None
    assert head(torch.randn(2, 7, H)).shape == (2, 7)


@pytest.mark.parametrize("combination", ["linear_combine", "add"])
def test_other_fusion_variants_load_from_a_checkpoint(combination, tmp_path):
    from modelkit import write_checkpoint

    source = tiny_model(seed=4, combination=combination)
    root = write_checkpoint(source, tmp_path / "ckpt", config_extra={"model_type": "vita-Qwen2"})
    model = load_checkpoint(root)
    assert model.config.combination == combination and model.config.model_type == "vita-Qwen2"
    agent, user = torch.randint(0, 512, (1, 6)), torch.randn(1, 6, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(agent, user)[0], source(agent, user)[0], atol=1e-6, rtol=1e-6)


def test_weights_decide_whether_there_is_an_informative_head(tmp_path):
    from modelkit import write_checkpoint

    root = write_checkpoint(tiny_model(seed=5, informative_head=False), tmp_path / "ckpt")
    config = json.loads((root / "config.json").read_text())
    config["use_informative_head"] = True
    (root / "config.json").write_text(json.dumps(config))
    model = load_checkpoint(root)
    assert model.informative_head is None
    assert any("weights decide: False" in note for note in model.checkpoint_info.notes)
    logits, informative = model(torch.zeros(1, 3, dtype=torch.long), torch.randn(1, 3, 32))
    assert informative is None and logits.shape == (1, 3, 512)
    session = StreamingSession(model, SpecialTokens(seg=1, pad=0, im_end=2, proactive=3), proactive=True)
    with torch.no_grad():
        session.start([torch.randn(4, 32)])
        assert not session.feed(torch.randn(3, 32)).started  # no head: the proactive rule cannot fire


def test_importing_the_package_and_the_inspect_command_does_not_import_torch():
    code = "import sys, vispeak_ros, vispeak_ros.tools.inspect; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
