/* Force-included after autoconf.h in the vfio-compat build (Kbuild.compat):
 * /dev/vfio/vfio comes from iommufd, not from vfio's container code. */
#undef CONFIG_VFIO_CONTAINER
#define CONFIG_IOMMUFD_VFIO_CONTAINER 1
