/* dp_lcore — placement of the poll lcores (DESIGN.md §3): hwloc finds where the port's device
 * (and the GPU) sit in the machine, and the EAL worker lcores whose CPUs are closest come
 * first. When the user chose the lcores in the EAL arguments, theirs are used as given. */
#include <limits.h>
#include <stdlib.h>

#include <hwloc.h>
#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "dataplane/dp_int.h"

int dp_lcore_user_given(int argc, char *const argv[])
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!a)
			continue;
		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--lcores", 8) == 0 || strncmp(a, "-l", 2) == 0 ||
		    strncmp(a, "-c", 2) == 0)
			return 1;
	}
	return 0;
}

/* The PCI bus id behind a port: its own device on the PCI bus, or for a vdev over a kernel
 * interface (af_xdp, af_packet: "iface=NAME") the PCI device of that interface. 0 or -1. */
static int dp_lcore_port_pci(uint16_t port_id, char *busid, size_t len)
{
	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(port_id, &info) != 0 || !info.device)
		return -1;
	const struct rte_bus *bus = rte_dev_bus(info.device);
	if (bus && strcmp(rte_bus_name(bus), "pci") == 0) {
		snprintf(busid, len, "%s", rte_dev_name(info.device));
		return 0;
	}
	const struct rte_devargs *da = rte_dev_devargs(info.device);
	const char *args = da ? da->args : NULL;
	const char *p = args ? strstr(args, "iface=") : NULL;
	if (!p)
		return -1;
	p += 6;
	char ifname[64];
	size_t n = strcspn(p, ",");
	if (n == 0 || n >= sizeof(ifname))
		return -1;
	memcpy(ifname, p, n);
	ifname[n] = 0;
	char path[128], real[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/class/net/%s/device", ifname);
	if (!realpath(path, real))
		return -1; /* veth, tap, ...: no device */
	const char *base = strrchr(real, '/');
	base = base ? base + 1 : real;
	unsigned dom, b, d, f;
	if (sscanf(base, "%x:%x:%x.%x", &dom, &b, &d, &f) != 4)
		return -1;
	snprintf(busid, len, "%04x:%02x:%02x.%x", dom & 0xffff, b & 0xff, d & 0x1f, f & 0x7);
	return 0;
}

/* The CPUs near a PCI device (those of its first non-I/O ancestor) and its NUMA node. */
static hwloc_const_cpuset_t dp_lcore_pci_near(hwloc_topology_t topo, const char *busid,
					      int *node)
{
	*node = -1;
	if (!busid)
		return NULL;
	hwloc_obj_t dev = hwloc_get_pcidev_by_busidstring(topo, busid);
	if (!dev)
		return NULL;
	hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, dev);
	if (!anc || !anc->cpuset)
		return NULL;
	if (anc->nodeset && hwloc_bitmap_weight(anc->nodeset) == 1)
		*node = hwloc_bitmap_first(anc->nodeset);
	return anc->cpuset;
}

static hwloc_const_cpuset_t dp_lcore_node_cpus(hwloc_topology_t topo, int node)
{
	if (node < 0)
		return NULL;
	hwloc_obj_t o = hwloc_get_numanode_obj_by_os_index(topo, (unsigned)node);
	return o ? o->cpuset : NULL;
}

/* The physical core holding CPU cpu, NULL when unknown. */
static hwloc_obj_t dp_lcore_core_of(hwloc_topology_t topo, int cpu)
{
	if (cpu < 0)
		return NULL;
	hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, (unsigned)cpu);
	return pu ? hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu) : NULL;
}

int dp_lcore_plan_make(uint16_t port_id, const char *gpu_pci, unsigned want, int user_given,
		       struct dp_lcore_plan *out)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->port_node = out->gpu_node = -1;
	out->user = user_given ? 1 : 0;
	unsigned ids[DP_LCORE_MAX], n = 0;
	unsigned lc;
	RTE_LCORE_FOREACH_WORKER(lc) {
		if (n < DP_LCORE_MAX)
			ids[n++] = lc;
	}
	if (n == 0)
		return -ENOENT;
	if (want == 0 || want > n)
		want = n;

	hwloc_topology_t topo;
	int have_topo = hwloc_topology_init(&topo) == 0;
	if (have_topo) {
		hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
		if (hwloc_topology_load(topo) != 0) {
			hwloc_topology_destroy(topo);
			have_topo = 0;
		}
	}
	int score[DP_LCORE_MAX];
	memset(score, 0, sizeof(score));
	if (have_topo) {
		char busid[64];
		hwloc_const_cpuset_t port_cpus = NULL, gpu_cpus;
		if (dp_lcore_port_pci(port_id, busid, sizeof(busid)) == 0)
			port_cpus = dp_lcore_pci_near(topo, busid, &out->port_node);
		if (!port_cpus) { /* a vdev: the socket DPDK reports, if any */
			int s = rte_eth_dev_socket_id(port_id);
			out->port_node = s >= 0 ? s : -1;
			port_cpus = dp_lcore_node_cpus(topo, out->port_node);
		}
		gpu_cpus = dp_lcore_pci_near(topo, gpu_pci, &out->gpu_node);
		hwloc_obj_t main_core = dp_lcore_core_of(topo, rte_lcore_to_cpu_id(
								 (int)rte_get_main_lcore()));
		for (unsigned i = 0; i < n; i++) {
			int cpu = rte_lcore_to_cpu_id((int)ids[i]);
			if (cpu < 0)
				continue;
			if (port_cpus && hwloc_bitmap_isset(port_cpus, (unsigned)cpu))
				score[i] += 4;
			if (gpu_cpus && hwloc_bitmap_isset(gpu_cpus, (unsigned)cpu))
				score[i] += 2;
			hwloc_obj_t core = dp_lcore_core_of(topo, cpu);
			if (!core || core != main_core)
				score[i] += 1; /* not an SMT sibling of the control thread */
		}
		hwloc_topology_destroy(topo);
	}
	if (!user_given) { /* stable sort by score, best first */
		for (unsigned i = 1; i < n; i++) {
			unsigned id = ids[i];
			int s = score[i];
			unsigned j = i;
			for (; j > 0 && score[j - 1] < s; j--) {
				ids[j] = ids[j - 1];
				score[j] = score[j - 1];
			}
			ids[j] = id;
			score[j] = s;
		}
	}
	int near_mask = out->port_node >= 0 ? 4 : out->gpu_node >= 0 ? 2 : 0;
	for (unsigned i = 0; i < want; i++) {
		out->lcore[i] = ids[i];
		out->near[i] = near_mask && (score[i] & near_mask);
		out->n_near += out->near[i];
	}
	out->n = want;
	return (int)want;
}
