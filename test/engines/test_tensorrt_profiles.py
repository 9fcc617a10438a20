"""Device profiles: the shipped files load, a GPU selects exactly one, bad files are refused with the file and key,
and the step graph's optimisation profile shapes cover every step the streaming session can take."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vispeak_ros.engines.device_profiles import (
    MAX_SEGMENT_ROWS,
    GpuInfo,
    ProfileError,
    load_profile,
    load_profiles,
    profiles_dir,
    select_profile,
    step_dims,
)

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_profiles_load_and_state_each_devices_precisions():
    profiles = load_profiles()
    assert profiles_dir() == ROOT / "engine" / "profiles"  # the checkout's: the single source of truth
    assert set(profiles) == {"agx_orin_64gb", "orin_nx_nano", "desktop_ampere", "desktop_ada", "desktop_hopper"}
    for name in ("agx_orin_64gb", "orin_nx_nano"):
        assert profiles[name].jetson and profiles[name].compute_capability == ("8.7",)
        assert "fp8" not in profiles[name].precisions and "int4" in profiles[name].precisions
    for name in ("desktop_ada", "desktop_hopper"):
        assert {"fp16", "fp8", "int4"} <= set(profiles[name].precisions) and not profiles[name].jetson
    assert "fp32" not in profiles["orin_nx_nano"].precisions  # no room for fp32 weights on those boards
    assert all(p.default_precision in p.precisions for p in profiles.values())


def test_installed_packages_find_the_copied_or_shared_profiles(tmp_path: Path):
    """pip: setup.py copies engine/profiles into the package; colcon: CMakeLists.txt installs them to
    share/vispeak_ros/engine/profiles above lib/pythonX.Y/site-packages (as the install tree lays them out)."""
    import shutil

    cmake = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "install(DIRECTORY engine/profiles DESTINATION share/${PROJECT_NAME}/engine" in cmake
    assert '(HERE / "engine" / "profiles").glob("*.yaml")' in (ROOT / "setup.py").read_text(encoding="utf-8")
    prefix = tmp_path / "install" / "vispeak_ros"
    module = prefix / "lib" / "python3.10" / "site-packages" / "vispeak_ros" / "engines" / "device_profiles.py"
    module.parent.mkdir(parents=True)
    with pytest.raises(ProfileError, match="device profiles not found"):
        profiles_dir(module)
    shared = prefix / "share" / "vispeak_ros" / "engine" / "profiles"
    shutil.copytree(ROOT / "engine" / "profiles", shared)
    assert profiles_dir(module) == shared and set(load_profiles(shared)) == set(load_profiles())
    shutil.copytree(ROOT / "engine" / "profiles", module.parent / "profiles")  # a pip install's copy comes first
    assert profiles_dir(module) == module.parent / "profiles"


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [
        (GpuInfo("Orin", "8.7", 61.4, True), "agx_orin_64gb"),
        (GpuInfo("Orin", "8.7", 30.6, True), "orin_nx_nano"),  # AGX Orin 32 GB
        (GpuInfo("Orin", "8.7", 15.3, True), "orin_nx_nano"),
        (GpuInfo("Orin", "8.7", 7.4, True), "orin_nx_nano"),
        (GpuInfo("NVIDIA GeForce RTX 4090", "8.9", 23.6, False), "desktop_ada"),
        (GpuInfo("NVIDIA L4", "8.9", 22.0, False), "desktop_ada"),
        (GpuInfo("NVIDIA H100 80GB HBM3", "9.0", 79.1, False), "desktop_hopper"),
        (GpuInfo("NVIDIA H200", "9.0", 139.8, False), "desktop_hopper"),
        (GpuInfo("NVIDIA A100-SXM4-40GB", "8.0", 39.4, False), "desktop_ampere"),
        (GpuInfo("NVIDIA GeForce RTX 3090", "8.6", 23.7, False), "desktop_ampere"),
    ],
)
def test_a_gpu_selects_exactly_one_profile(gpu: GpuInfo, expected: str):
    assert select_profile(gpu, load_profiles()).name == expected


def test_unknown_gpus_and_wrong_names_are_refused_with_a_reason():
    profiles = load_profiles()
    with pytest.raises(ProfileError, match=r"no device profile matches Tesla T4 \(compute capability 7.5"):
        select_profile(GpuInfo("Tesla T4", "7.5", 15.0, False), profiles)
    with pytest.raises(ProfileError, match="no device profile matches"):  # sm_87 but not a Jetson
        select_profile(GpuInfo("odd", "8.7", 30.0, False), profiles)
    h100 = GpuInfo("NVIDIA H100 80GB HBM3", "9.0", 79.1, False)
    with pytest.raises(
        ProfileError, match=r"desktop_ada is for compute capability 8\.9; NVIDIA H100 80GB HBM3 is 9\.0"
    ):
        select_profile(h100, profiles, "desktop_ada")
    with pytest.raises(ProfileError, match="unknown device profile 'thor'"):
        select_profile(h100, profiles, "thor")
    assert select_profile(h100, profiles, "desktop_hopper").name == "desktop_hopper"


def _write(folder: Path, name: str, **changes) -> Path:
    data = yaml.safe_load((profiles_dir() / "desktop_ada.yaml").read_text())
    data["name"] = name
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_overlapping_profiles_are_refused(tmp_path: Path):
    _write(tmp_path, "one")
    _write(tmp_path, "two")
    with pytest.raises(ProfileError, match=r"several device profiles match .*: one, two"):
        select_profile(GpuInfo("NVIDIA L4", "8.9", 22.0, False), load_profiles(tmp_path))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"precisions": ["fp16", "fp64"]}, "precisions must be a non-empty list of"),
        ({"default_precision": "fp8", "precisions": ["fp16"]}, "default_precision 'fp8' is not in precisions"),
        ({"workspace_mb": 0}, "workspace_mb must be an integer in"),
        ({"max_window_segments": "lots"}, "max_window_segments must be an integer"),
        ({"typical_sink_rows": 5000}, "typical_sink_rows must be an integer in \\[1, 1024\\]"),
        ({"match": {"jetson": False}}, "match needs compute_capability"),
        ({"match": {"compute_capability": "sm89"}}, "match.compute_capability must look like '8.7'"),
        ({"match": {"compute_capability": "8.9", "min_memory_gb": 64, "max_memory_gb": 32}}, "must be below"),
        ({"colour": "green"}, "unknown key\\(s\\) colour"),
        ({"workspace_mb": None}, "missing key\\(s\\) workspace_mb"),
    ],
)
def test_bad_profile_files_are_refused_naming_file_and_key(tmp_path: Path, changes: dict, message: str):
    path = _write(tmp_path, "bad", **changes)
    with pytest.raises(ProfileError, match=message) as refused:
        load_profile(path)
    assert str(refused.value).startswith(str(path))


def test_profile_name_must_match_its_file(tmp_path: Path):
    path = _write(tmp_path, "right")
    path.rename(tmp_path / "wrong.yaml")
    with pytest.raises(ProfileError, match="name 'right' must equal the file name 'wrong'"):
        load_profile(tmp_path / "wrong.yaml")


def test_step_shapes_follow_the_profile_and_the_window():
    orin = load_profiles()["agx_orin_64gb"]
    dims = step_dims(orin, window_segments=60, frame_rows=65, audio_rows=13)
    window = 60 * (65 + 13)
    assert list(dims) == ["segment", "decode"]
    assert dims["segment"]["rows"].as_list() == [1, 65, MAX_SEGMENT_ROWS]
    assert dims["decode"]["rows"].as_list() == [1, 1, 1]
    assert dims["segment"]["past_rows"].as_list() == [0, 64 + window, 512 + window + MAX_SEGMENT_ROWS - 1]
    assert dims["decode"]["past_rows"] == dims["segment"]["past_rows"]
    audio_only = step_dims(orin, 10, frame_rows=0, audio_rows=13)
    assert audio_only["segment"]["rows"].opt == 13 and audio_only["segment"]["past_rows"].max == 512 + 130 + 255
    with pytest.raises(ProfileError, match="window_segments 121 exceeds device profile agx_orin_64gb's"):
        step_dims(orin, 121, 65, 13)
    with pytest.raises(ProfileError, match="a segment needs frame or audio rows"):
        step_dims(orin, 10, 0, 0)


def test_step_shapes_cover_every_step_the_session_allows(demo_model):
    """The session refuses a step past `position_bound` (sink + window + max segment); with the largest sink the
    profile allows, every permitted step (past length, rows) lies inside the segment profile."""
    from vispeak_ros.runtime.backends.torch_backend import TorchBackend

    profile = load_profiles()["orin_nx_nano"]
    backend = TorchBackend(demo_model, demo_model.tokenizer, threshold=0.35, window_segments=60, max_answer_tokens=8)
    session = backend.session
    session.sink_len = profile.max_sink_rows
    bound = session.position_bound
    dims = step_dims(profile, 60, backend.frame_rows, 13)["segment"]
    assert session.max_segment_tokens == dims["rows"].max
    # the latest permitted step is one row at position bound - 1, after a past of bound - 1 rows: exactly the max
    assert dims["past_rows"].max == bound - 1
