"""pip metadata for vispeak_ros (the ROS build uses CMakeLists.txt and package.xml).

Version ranges here, not pins: robots run Python 3.10-3.12 and NVIDIA's own torch builds. The exact
`torch==2.13.0` pin lives only in .ci/run and the README commands.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithInterfaces(build_py):
    """Copy msg/*.msg into vispeak_ros/interfaces/ (config/*.yaml into vispeak_ros/config/, engine/profiles/*.yaml
    into vispeak_ros/engines/profiles/) of the build, so installed tools find the definitions, the node's default
    parameters and the TensorRT device profiles.

    msg/, config/ and engine/ stay the single source of truth; a source checkout reads them directly (see
    vispeak_ros/interfaces.py, vispeak_ros/engines/device_profiles.py).
    """

    def run(self):
        super().run()
        target = Path(self.build_lib) / "vispeak_ros" / "interfaces"
        target.mkdir(parents=True, exist_ok=True)
        for msg in sorted((HERE / "msg").glob("*.msg")):
            self.copy_file(str(msg), str(target / msg.name))
        config = Path(self.build_lib) / "vispeak_ros" / "config"  # the node's default parameters
        config.mkdir(parents=True, exist_ok=True)
        for yaml_file in sorted((HERE / "config").glob("*.yaml")):
            self.copy_file(str(yaml_file), str(config / yaml_file.name))
        profiles = Path(self.build_lib) / "vispeak_ros" / "engines" / "profiles"  # TensorRT device profiles
        profiles.mkdir(parents=True, exist_ok=True)
        for yaml_file in sorted((HERE / "engine" / "profiles").glob("*.yaml")):
            self.copy_file(str(yaml_file), str(profiles / yaml_file.name))


MODEL = [
    "torch>=2.4",
    "transformers>=5.0",
    "safetensors>=0.4",
    "tokenizers>=0.21",
    "kaldi-native-fbank>=1.20",
    "pillow>=9",
]
TRANSPORT = ["rosbags>=0.10.4", "cyclonedds>=0.10.5", "mcap>=1.1", "mcap-ros2-support>=0.5"]
# ONNX export and the onnxruntime backend (Jetson: NVIDIA's onnxruntime-gpu wheel provides the same module).
ONNX = ["onnx>=1.16", "onnxruntime>=1.18"]
# The full training recipe (vispeak-train --stage N): accelerate runs it on 1..N processes/nodes, peft adds LoRA.
# DeepSpeed is left out on purpose: it needs CUDA to be useful (pip install deepspeed on the GPU machines).
TRAIN = ["accelerate>=1.0", "peft>=0.13"]
TEST = ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "vermin>=1.6", "catkin_pkg>=1.0", "lameenc>=1.7"]

setup(
    name="vispeak_ros",
    version="0.1.0",
    description="ViSpeak visual instruction feedback for ROS 2 robots",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["vispeak_ros", "vispeak_ros.*"]),
    # Interface definitions of packages we talk to but do not build (e.g. both audio_common flavours).
    package_data={
        "vispeak_ros": [
            "ros/audio_common_msgs/*/*.msg",
            "data/demo_model/*",
            "data/demo_model/*/*",
            "data/demo_recording/*",
            "data/*.json",
            "engines/profiles/*.yaml",  # copied from engine/profiles/ by BuildWithInterfaces
        ]
    },
    install_requires=[
        "numpy>=1.23",
        "soxr>=0.3",
        "opencv-python-headless>=4.8",
        "av>=12",
        "pyyaml>=6",
    ],
    extras_require={
        "model": MODEL,
        "transport": TRANSPORT,
        "onnx": ONNX,
        "train": MODEL + TRAIN,
        "all": MODEL + TRANSPORT + ONNX + TRAIN,
        "test": MODEL + TRANSPORT + ONNX + TRAIN + TEST,
    },
    entry_points={
        "console_scripts": [
            "vispeak-demo = vispeak_ros.tools.demo:main",
            "vispeak-inspect = vispeak_ros.tools.inspect:main",
            "vispeak-train = vispeak_ros.training.cli:main",
            "vispeak-node = vispeak_ros.ros.node_main:main",
            "vispeak-replay = vispeak_ros.tools.replay:main",
            "vispeak-eval = vispeak_ros.evaluation.cli:main",
            "vispeak-build-engine = vispeak_ros.engines.cli:main",
        ],
    },
    cmdclass={"build_py": BuildWithInterfaces},
    zip_safe=False,
)
