# vispeak_ros on ROS 2 Jazzy (Ubuntu 24.04, Python 3.12), x86_64 or arm64 servers. NOT RUN BY OUR CI.
#
#   docker build -f docker/jazzy.Dockerfile -t vispeak_ros:jazzy .          # from the repository root
#   docker run --rm vispeak_ros:jazzy docker/ros_check.sh                     # build, test, launch smoke
#   docker run --rm --net=host vispeak_ros:jazzy ros2 launch vispeak_ros assistant.launch.py
#
# Layout: a colcon workspace in /ws (this package + mgonzs13's audio_common_msgs from source), ROS from apt, and
# a venv created with --system-site-packages for the pip-only dependencies (torch, transformers...), so the
# venv's python sees rclpy and the built messages while torch stays out of the system Python.
# Build arguments: TORCH_SPEC / TORCH_INDEX pick torch (CPU by default; for an NVIDIA GPU use PyTorch's CUDA
# index, e.g. --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 and run with --gpus all), AUDIO_COMMON_REF
# pins the audio_common revision, EXTRAS the pip extras installed.
# Jazzy differences: Ubuntu 24.04's system NumPy is 1.26, which already satisfies the package, so pip keeps it;
# the system Python is "externally managed" (PEP 668), which the venv sidesteps; launch_ros could autostart
# lifecycle nodes here, but the node configures and activates itself (parameter autostart) on every distro.
ARG ROS_DISTRO=jazzy
FROM ros:${ROS_DISTRO}-ros-base

ARG ROS_DISTRO
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG AUDIO_COMMON_REF=main
ARG EXTRAS=all
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    VENV=/opt/vispeak-venv \
    WS=/ws
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN apt-get update \
 && apt-get install -y --no-install-recommends git python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR ${WS}
# audio_common_msgs of mgonzs13/audio_common (AudioStamped, the `say` TTS action): the node's default flavour.
# Only the message package is taken; the apt package of that name is the other (ros-drivers) flavour.
RUN git clone --depth 1 --branch "${AUDIO_COMMON_REF}" https://github.com/mgonzs13/audio_common.git /tmp/audio_common \
 && mkdir -p src \
 && mv /tmp/audio_common/audio_common_msgs src/ \
 && rm -rf /tmp/audio_common
COPY . src/vispeak_ros

# System dependencies from package.xml (rclpy, messages, launch, OpenCV, NumPy 1, pytest...).
RUN apt-get update \
 && rosdep update --rosdistro "${ROS_DISTRO}" \
 && rosdep install --from-paths src --ignore-src -y --rosdistro "${ROS_DISTRO}" \
 && rm -rf /var/lib/apt/lists/*

# pip dependencies in a venv on top of the system site-packages. NumPy stays below 2: ROS's message extensions
# (and cv_bridge) are built against NumPy 1. The package itself is installed by colcon, so pip's copy of it is
# removed again after its dependencies are in.
RUN python3 -m venv --system-site-packages "${VENV}" \
 && "${VENV}/bin/pip" install --upgrade pip \
 && "${VENV}/bin/pip" install --index-url "${TORCH_INDEX}" "${TORCH_SPEC}" \
 && printf 'numpy<2\nopencv-python-headless<4.12\n' > /tmp/ros-constraints.txt \
 && "${VENV}/bin/pip" install -c /tmp/ros-constraints.txt "./src/vispeak_ros[${EXTRAS}]" \
 && "${VENV}/bin/pip" uninstall -y vispeak_ros \
 && "${VENV}/bin/python" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
ENV PATH=${VENV}/bin:${PATH}

RUN source "/opt/ros/${ROS_DISTRO}/setup.bash" \
 && colcon build --packages-up-to vispeak_ros --event-handlers console_direct+

RUN printf '#!/bin/bash\nset -e\nsource "/opt/ros/%s/setup.bash"\nsource "%s/install/setup.bash"\nexec "$@"\n' \
      "${ROS_DISTRO}" "${WS}" > /vispeak_entrypoint.sh \
 && chmod +x /vispeak_entrypoint.sh
WORKDIR ${WS}/src/vispeak_ros
ENTRYPOINT ["/vispeak_entrypoint.sh"]
CMD ["ros2", "launch", "vispeak_ros", "assistant.launch.py"]
