# syntax=docker/dockerfile:1
#
# iommu-agent in a container. The image only carries the static binary; what
# it drives lives on the host, so `docker run` must hand it over. For the
# daemon (the default command, `serve`):
#
#   docker run -d --name iommu-agent \
#     --device /dev/iommu --device /dev/vfio       iommufd and VFIO nodes (mount /dev/vfio as a
#                                                  volume instead when groups and cdevs come and go)
#     -v /sys:/sys                                 writable sysfs: driver_override, bind, unbind, drivers_probe
#     --pid host                                   the agent reads /proc/PID/fd of the host's VMMs to know
#                                                  whether they still hold a cdev, and raises their memlock
#     -v /run/iommu-agent:/run/iommu-agent         the socket, for VMMs on the host
#     -v /var/lib/iommu-agent:/var/lib/iommu-agent lease records: a restarted container re-adopts leases
#     -v /etc/iommu-agent:/etc/iommu-agent:ro      policy.json: who may lease what
#     --cap-drop ALL --cap-add SYS_RESOURCE,SYS_PTRACE,DAC_READ_SEARCH
#     --ulimit memlock=-1                          pins of broker leases count against the agent's limit
#     -p 127.0.0.1:9477:9477                       /metrics and /healthz, for the host only
#     iommu-agent
#
# Why those capabilities: SYS_RESOURCE raises a VMM's RLIMIT_MEMLOCK and sets
# IOMMU_OPTION_RLIMIT_MODE on the iommufd handed out; SYS_PTRACE and
# DAC_READ_SEARCH read other uids' /proc/PID/fd. More is needed for more:
# leasing SR-IOV VFs with a config (serve) and `sriov` need NET_ADMIN and
# --network host (the PF's netdev); `serve -trace` and `trace` need BPF and
# PERFMON; `probe`, `bind`, `unbind` the same nodes and /sys. vfio-pci must be
# loaded on the host (the container loads no modules). The runtime stage is
# scratch: no shell, so the default seccomp profile and root inside are all
# the container adds. No engine runs on the build machines, so this file is
# checked by reading, not built there.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# bpf2go output is committed: no clang here. Static, so the runtime image needs no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/iommu-agent ./cmd/iommu-agent

# A static binary needs nothing else; it runs as root (uid 0) because it
# rebinds drivers and opens /dev/vfio on the host's behalf.
FROM scratch AS runtime
COPY --from=build /out/iommu-agent /usr/local/bin/iommu-agent
VOLUME ["/run/iommu-agent", "/var/lib/iommu-agent"]
ENTRYPOINT ["/usr/local/bin/iommu-agent"]
CMD ["serve", "-backend", "iommufd", "-config", "/etc/iommu-agent/policy.json", "-socket", "/run/iommu-agent/agent.sock", "-state", "/var/lib/iommu-agent", "-metrics", ":9477"]
