# syntax=docker/dockerfile:1
#
# iommu-agent in a container. The image only carries the static binary; what
# it drives lives on the host, so `docker run` must hand it over:
#   --device /dev/iommu --device /dev/vfio     iommufd and VFIO nodes (mount /dev/vfio
#                                              as a volume instead when groups come and go)
#   -v /sys:/sys                               writable sysfs: driver_override, drivers_probe
#   --network host                             SR-IOV VF configuration is netlink in the host netns
#   --cap-add SYS_ADMIN,NET_ADMIN,BPF,PERFMON,IPC_LOCK,SYS_RESOURCE
#   --ulimit memlock=-1                        pinning guest RAM for DMA counts against RLIMIT_MEMLOCK
# No engine runs on the build machines, so this file is checked by tests, not built there.

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
ENTRYPOINT ["/usr/local/bin/iommu-agent"]
CMD ["probe"]
