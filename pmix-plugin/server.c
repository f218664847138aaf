/* server.c - PMIx server start and stop, the host module table (one
 * designated initializer: what is not ours returns PMIX_ERR_NOT_SUPPORTED),
 * and the small helpers the other files share: status mapping, waiting for
 * a PMIx callback, PMIX_TIMEOUT lookup. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mos_pmix_server mos_pmix_srv;

/* --- what we do not support: answered at once, the client gets the error */
static pmix_status_t up_publish(const pmix_proc_t *p, const pmix_info_t i[], size_t n,
				pmix_op_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_lookup(const pmix_proc_t *p, char **keys, const pmix_info_t i[], size_t n,
			       pmix_lookup_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_unpublish(const pmix_proc_t *p, char **keys, const pmix_info_t i[],
				  size_t n, pmix_op_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_spawn(const pmix_proc_t *p, const pmix_info_t ji[], size_t nji,
			      const pmix_app_t apps[], size_t napps, pmix_spawn_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_connect(const pmix_proc_t procs[], size_t np, const pmix_info_t i[],
				size_t n, pmix_op_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_disconnect(const pmix_proc_t procs[], size_t np, const pmix_info_t i[],
				   size_t n, pmix_op_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_allocate(const pmix_proc_t *c, pmix_alloc_directive_t dir,
				 const pmix_info_t i[], size_t n, pmix_info_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_monitor(const pmix_proc_t *r, const pmix_info_t *m, pmix_status_t e,
				const pmix_info_t i[], size_t n, pmix_info_cbfunc_t cb, void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

static pmix_status_t up_group(pmix_group_operation_t op, char grp[], const pmix_proc_t procs[],
			      size_t np, const pmix_info_t i[], size_t n, pmix_info_cbfunc_t cb,
			      void *d)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

/* Left NULL on purpose, so that PMIx handles them itself: register_events,
 * deregister_events, notify_event (local event delivery), listener,
 * credentials, IOF, log, fabric, and tool_connected without tool support. */
static pmix_server_module_t module = {
	.client_connected2 = mos_pmix_up_connected,
	.client_finalized = mos_pmix_up_finalized,
	.abort = mos_pmix_up_abort,
	.fence_nb = mos_pmix_up_fence,
	.direct_modex = mos_pmix_up_dmodex,
	.publish = up_publish,
	.lookup = up_lookup,
	.unpublish = up_unpublish,
	.spawn = up_spawn,
	.connect = up_connect,
	.disconnect = up_disconnect,
	.query = mos_pmix_up_query,
	.allocate = up_allocate,
	.job_control = mos_pmix_up_job_control,
	.monitor = up_monitor,
	.group = up_group,
};

static int start_pmix(bool tool_support)
{
	struct mos_pmix_server *s = &mos_pmix_srv;
	pmix_data_array_t arr = PMIX_DATA_ARRAY_STATIC_INIT;
	pmix_status_t rc;
	void *list = PMIx_Info_list_start();

	PMIx_Info_list_add(list, PMIX_SERVER_TMPDIR, s->tmpdir, PMIX_STRING);
	PMIx_Info_list_add(list, PMIX_SYSTEM_TMPDIR, s->tmpdir, PMIX_STRING);
	PMIx_Info_list_add(list, PMIX_HOSTNAME, s->hostname, PMIX_STRING);
	PMIx_Info_list_add(list, PMIX_NODEID, &s->nodeid, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_GDS_MODULE, "hash", PMIX_STRING);
	if (tool_support) {
		module.tool_connected = mos_pmix_up_tool_connected;
		PMIx_Info_list_add(list, PMIX_SERVER_TOOL_SUPPORT, NULL, PMIX_BOOL);
	}
	rc = PMIx_Info_list_convert(list, &arr);
	PMIx_Info_list_release(list);
	if (rc != PMIX_SUCCESS)
		return -ENOMEM;
	rc = PMIx_server_init(&module, arr.array, arr.size);
	PMIx_Data_array_destruct(&arr);
	if (rc != PMIX_SUCCESS) {
		pr_err("pmix: PMIx_server_init: %s", PMIx_Error_string(rc));
		return -EIO;
	}
	if (tool_support)
		mos_pmix_tool_start();
	return 0;
}

int mos_pmix_init(struct event_base *base, const char *hostname, uint32_t nodeid,
		  const char *tmpdir, const struct mos_pmix_host_ops *ops, bool tool_support)
{
	struct mos_pmix_server *s = &mos_pmix_srv;
	int err;

	if (s->state != MOS_PMIX_DOWN)
		return -EALREADY;
	if (!base || !hostname || !*hostname || strlen(hostname) >= sizeof(s->hostname) ||
	    !tmpdir || !ops)
		return -EINVAL;
	if (mkdir(tmpdir, 0755) < 0 && errno != EEXIST) {
		err = -errno;
		pr_err("pmix: mkdir %s: %m", tmpdir);
		return err;
	}
	s->base = base;
	s->ops = *ops;
	strcpy(s->hostname, hostname);
	s->nodeid = nodeid;
	s->tmpdir = strdup(tmpdir);
	if (!s->tmpdir)
		return -ENOMEM;
	/* the server's own data store: no shared-memory segments to migrate */
	setenv("PMIX_MCA_gds", "hash", 0);
	err = mos_pmix_shift_init();
	if (err)
		goto out_free;
	s->state = MOS_PMIX_RUNNING;
	err = start_pmix(tool_support);
	if (err)
		goto out_shift;
	pr_debug("pmix: server %s (node %u) up, tmpdir %s", hostname, nodeid, tmpdir);
	return 0;

out_shift:
	s->state = MOS_PMIX_DOWN;
	mos_pmix_shift_fini();
out_free:
	free(s->tmpdir);
	s->tmpdir = NULL;
	return err;
}

void mos_pmix_fini(void)
{
	struct mos_pmix_server *s = &mos_pmix_srv;

	if (s->state != MOS_PMIX_RUNNING)
		return;
	/* answer what is queued and pending with errors, host ops stay quiet */
	s->state = MOS_PMIX_STOPPING;
	mos_pmix_shift_drain();
	mos_pmix_query_fini();
	mos_pmix_jobctl_fini();
	mos_pmix_jobs_fini();
	PMIx_server_finalize();
	mos_pmix_tools_fini();
	s->state = MOS_PMIX_DEAD;
	mos_pmix_shift_fini();
	free(s->tmpdir);
	s->tmpdir = NULL;
	mos_pmix_set_topology(NULL);
	s->state = MOS_PMIX_DOWN;
}

int mos_pmix_set_topology(const char *xml)
{
	char *copy = xml ? strdup(xml) : NULL;

	if (xml && !copy)
		return -ENOMEM;
	free(mos_pmix_srv.topo_xml);
	mos_pmix_srv.topo_xml = copy;
	return 0;
}

/* --- helpers shared by the other files ------------------------------- */

pmix_status_t mos_pmix_to_pmix(int err)
{
	switch (err) {
	case 0:
		return PMIX_SUCCESS;
	case -ETIMEDOUT:
		return PMIX_ERR_TIMEOUT;
	case -EHOSTDOWN:
	case -EHOSTUNREACH:
	case -ECONNRESET:
	case -EPIPE:
		return PMIX_ERR_UNREACH;
	case -ENOENT:
		return PMIX_ERR_NOT_FOUND;
	case -ENOTSUP:
		return PMIX_ERR_NOT_SUPPORTED;
	case -ENOMEM:
		return PMIX_ERR_NOMEM;
	case -EINVAL:
		return PMIX_ERR_BAD_PARAM;
	case -EPERM:
	case -EACCES:
		return PMIX_ERR_NO_PERMISSIONS;
	case -ESRCH:
		return PMIX_ERR_NOT_FOUND;
	default:
		return PMIX_ERROR;
	}
}

int mos_pmix_from_pmix(pmix_status_t st)
{
	switch (st) {
	case PMIX_SUCCESS:
		return 0;
	case PMIX_ERR_TIMEOUT:
		return -ETIMEDOUT;
	case PMIX_ERR_UNREACH:
	case PMIX_ERR_LOST_CONNECTION:
		return -EHOSTDOWN;
	case PMIX_ERR_NOT_FOUND:
		return -ENOENT;
	case PMIX_ERR_NOT_SUPPORTED:
		return -ENOTSUP;
	case PMIX_ERR_NOMEM:
		return -ENOMEM;
	case PMIX_ERR_BAD_PARAM:
		return -EINVAL;
	case PMIX_ERR_NO_PERMISSIONS:
		return -EPERM;
	default:
		return -EIO;
	}
}

void mos_pmix_sync_init(struct mos_pmix_sync *s)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->done = false;
	s->status = PMIX_SUCCESS;
}

void mos_pmix_sync_cb(pmix_status_t status, void *cbdata)
{
	struct mos_pmix_sync *s = cbdata;

	pthread_mutex_lock(&s->lock);
	s->status = status;
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

pmix_status_t mos_pmix_sync_wait(struct mos_pmix_sync *s, pmix_status_t rc)
{
	if (rc == PMIX_SUCCESS) {
		pthread_mutex_lock(&s->lock);
		while (!s->done)
			pthread_cond_wait(&s->cond, &s->lock);
		rc = s->status;
		pthread_mutex_unlock(&s->lock);
	} else if (rc == PMIX_OPERATION_SUCCEEDED) {
		rc = PMIX_SUCCESS;
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	return rc;
}

void mos_pmix_release_free(void *cbdata)
{
	free(cbdata);
}

void mos_pmix_release_infos(void *cbdata)
{
	struct mos_pmix_infos *r = cbdata;

	if (r)
		PMIX_INFO_FREE(r->info, r->n);
	free(r);
}

int mos_pmix_info_timeout(const pmix_info_t info[], size_t ninfo)
{
	for (size_t i = 0; i < ninfo; i++) {
		if (!PMIX_CHECK_KEY(&info[i], PMIX_TIMEOUT))
			continue;
		if (info[i].value.type == PMIX_INT)
			return info[i].value.data.integer > 0 ? info[i].value.data.integer : 0;
		if (info[i].value.type == PMIX_UINT32)
			return (int)info[i].value.data.uint32;
	}
	return 0;
}
