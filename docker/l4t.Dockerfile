# vispeak_ros on a Jetson (L4T / JetPack 6, Ubuntu 22.04, Python 3.10, CUDA 12.6) with ROS 2 Humble.
# NOT RUN BY OUR CI, and not built by us: the tags below are assumptions to check against your JetPack.
#
#   docker build -f docker/l4t.Dockerfile -t vispeak_ros:l4t .                 # on the Jetson, repository root
#   docker run --rm --runtime nvidia vispeak_ros:l4t docker/ros_check.sh
#   docker run --rm --runtime nvidia --net=host vispeak_ros:l4t \
#       ros2 launch vispeak_ros assistant.launch.py      # GPU: set device to cuda in your params file
#
# Assumptions (override with --build-arg):
# - BASE_IMAGE: a jetson-containers ROS image (dustynv/ros:<distro>-ros-base-l4t-r<L4T version>) whose L4T
#   release matches the host's (`cat /etc/nv_tegra_release`; r36.4 = JetPack 6.1/6.2). These images build ROS
#   from source under /opt/ros/<distro>/install, so rosdep must not install apt ROS packages over it: the ROS
#   setup is sourced first (rosdep then sees the installed packages) and ROSDEP_SKIP names keys to leave alone
#   (cv_bridge is declared but never imported; the image's own OpenCV stays).
# - torch: NVIDIA's build for JetPack 6 from the Jetson AI Lab index (TORCH_INDEX), never PyPI's aarch64 wheel
#   (no Jetson CUDA). Any NVIDIA torch >= 2.4 works; the index has moved before, check it if the install fails.
# - TensorRT's Python bindings come with JetPack in the system dist-packages; the venv sees them because it is
#   created with --system-site-packages.
ARG BASE_IMAGE=dustynv/ros:humble-ros-base-l4t-r36.4.0
FROM ${BASE_IMAGE}

ARG ROS_DISTRO=humble
ARG TORCH_SPEC="torch"
ARG TORCH_INDEX=https://pypi.jetson-ai-lab.io/jp6/cu126
ARG AUDIO_COMMON_REF=main
ARG EXTRAS=model
ARG ROSDEP_SKIP="cv_bridge python3-opencv"
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    ROS_DISTRO=${ROS_DISTRO} \
    VENV=/opt/vispeak-venv \
    WS=/ws
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The ROS setup script: source builds (jetson-containers) keep it under install/, apt installs do not.
RUN printf '#!/bin/bash\nfor f in /opt/ros/%s/install/setup.bash /opt/ros/%s/setup.bash; do\n  if [ -f "$f" ]; then source "$f"; break; fi\ndone\n' \
      "${ROS_DISTRO}" "${ROS_DISTRO}" > /opt/ros_setup.sh

RUN apt-get update \
 && apt-get install -y --no-install-recommends git python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR ${WS}
RUN git clone --depth 1 --branch "${AUDIO_COMMON_REF}" https://github.com/mgonzs13/audio_common.git /tmp/audio_common \
 && mkdir -p src \
 && mv /tmp/audio_common/audio_common_msgs src/ \
 && rm -rf /tmp/audio_common
COPY . src/vispeak_ros

RUN source /opt/ros_setup.sh \
 && apt-get update \
 && (rosdep init 2>/dev/null || true) \
 && rosdep update --rosdistro "${ROS_DISTRO}" \
 && rosdep install --from-paths src --ignore-src -y --rosdistro "${ROS_DISTRO}" --skip-keys "${ROSDEP_SKIP}" \
 && rm -rf /var/lib/apt/lists/*

# EXTRAS=model: the node needs torch and transformers; the Cyclone DDS transport (extras "transport") is for
# machines without ROS. NumPy stays below 2 for ROS's message extensions.
RUN python3 -m venv --system-site-packages "${VENV}" \
 && "${VENV}/bin/pip" install --upgrade pip \
 && "${VENV}/bin/pip" install --index-url "${TORCH_INDEX}" "${TORCH_SPEC}" \
 && printf 'numpy<2\nopencv-python-headless<4.12\n' > /tmp/ros-constraints.txt \
 && "${VENV}/bin/pip" install -c /tmp/ros-constraints.txt "./src/vispeak_ros[${EXTRAS}]" \
 && "${VENV}/bin/pip" uninstall -y vispeak_ros \
 && "${VENV}/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
ENV PATH=${VENV}/bin:${PATH}

RUN source /opt/ros_setup.sh \
 && colcon build --packages-up-to vispeak_ros --event-handlers console_direct+

RUN printf '#!/bin/bash\nset -e\nsource /opt/ros_setup.sh\nsource "%s/install/setup.bash"\nexec "$@"\n' "${WS}" \
      > /vispeak_entrypoint.sh \
 && chmod +x /vispeak_entrypoint.sh
WORKDIR ${WS}/src/vispeak_ros
ENTRYPOINT ["/vispeak_entrypoint.sh"]
CMD ["ros2", "launch", "vispeak_ros", "assistant.launch.py"]
