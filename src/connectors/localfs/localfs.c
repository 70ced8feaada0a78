/*
 * localfs.c — the localfs connector: directories under a context's root,
 * and files inside them.
 *
 * Two providers: localfs.dir (a container) and localfs.file (attached to
 * its directory, so the engine writes files after their directory exists,
 * removes them before it goes, and forgets them when it is removed).  A
 * file's tracking record is its size and fingerprint, never its content.
 *
 * The file system is not transactional, so both providers are marked
 * outside_transaction: a run commits the intended record next to the old
 * ones first, and the sink runs afterwards, in the background worker, in a
 * transaction that prunes the records once the write succeeded (engine.c).
 * Every action is idempotent: writes go to a temporary file renamed over
 * the target, deletions tolerate absence.
 *
 * Confinement: a path is relative, made of plain names (no "", ".", ".."),
 * and is resolved from the root one component at a time with O_NOFOLLOW, so
 * neither a declared path nor a symbolic link planted in the tree can lead
 * outside the root.  The root itself is set by a superuser.
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "coco_target.h"
#include "localfs.h"

#define DIR_PROVIDER "localfs.dir"
#define FILE_PROVIDER "localfs.file"
#define TMP_PREFIX ".coco-tmp-"

/* ---- paths ------------------------------------------------------------- */

static void
check_name(const char *name, const char *path, const char *what)
{
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" has an empty component", what, path)));
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s \"%s\" may not contain \"%s\"", what, path, name),
				 errdetail("Paths are confined to their context's root.")));
	/* the file-name limit of the file systems a root can be on */
	if (strlen(name) > 255)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s has a component of %zu bytes", what, strlen(name)),
				 errdetail("A file or directory name has at most 255 bytes.")));
	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("%s \"%s\" uses the reserved prefix \"%s\"", what, path, TMP_PREFIX)));
}

/* A directory path relative to the root: plain names joined by '/'. */
static void
check_dir_path(const char *path)
{
	char	   *copy;
	char	   *save = NULL;
	char	   *part;

	if (path[0] == '/')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("directory path \"%s\" is absolute", path),
				 errdetail("Paths are relative to their context's root.")));
	if (strlen(path) >= MAXPGPATH / 2)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("directory path is too long (%zu bytes)", strlen(path))));
	if (path[0] == '\0' || path[strlen(path) - 1] == '/' || strstr(path, "//") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("directory path \"%s\" has an empty component", path)));
	copy = pstrdup(path);
	for (part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save))
		check_name(part, path, "directory path");
}

static void
check_file_name(const char *name)
{
	if (strchr(name, '/') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("file name \"%s\" contains \"/\"", name),
				 errhint("Declare the directory with coco.declare_dir() and the file by its name in it.")));
	if (strlen(name) > 255)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("file name is too long (%zu bytes)", strlen(name))));
	check_name(name, name, "file name");
}

static void
check_root(const char *root)
{
	struct stat st;

	if (root[0] != '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("localfs root \"%s\" is not an absolute path", root)));
	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("localfs root \"%s\" is not a directory the server can reach", root)));
}

/* The settings of a localfs context: a "root" that is a directory. */
static void
check_settings(const char *key, Jsonb *settings)
{
	JsonbValue *root = getKeyJsonValueFromContainer(&settings->root, "root", 4, NULL);

	if (root == NULL || root->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("localfs context \"%s\" needs a \"root\" setting", key),
				 errhint("For example: '{\"root\": \"/srv/exports\"}'.")));
	check_root(pnstrdup(root->val.string.val, root->val.string.len));
}

static char *
context_root(const char *context)
{
	Jsonb	   *settings = coco_context_settings(context, "localfs", coco_run_owner());
	JsonbValue *root = getKeyJsonValueFromContainer(&settings->root, "root", 4, NULL);

	return pnstrdup(root->val.string.val, root->val.string.len);
}

/* Report errno about `what`, after the caller closed what it had open. */
static void
fs_error(int err, const char *verb, const char *what)
{
	if (err == ELOOP || err == ENOTDIR)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("could not %s \"%s\": a component is a symbolic link or not a directory", verb, what),
				 errdetail("Symbolic links are not followed below a localfs root.")));
	errno = err;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s \"%s\": %m", verb, what)));
}

/*
 * Open the directory `rel` below `root`, one component at a time without
 * following symbolic links; create missing ones when asked.  Returns -1 if
 * a component is missing, or is not a directory below the root (and is
 * not to be created).
 */
static int
open_dir(const char *root, const char *rel, bool create, const char *what)
{
	int			fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char	   *copy = pstrdup(rel);
	char	   *save = NULL;
	char	   *part;

	if (fd < 0)
		fs_error(errno, "open localfs root", root);
	for (part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save))
	{
		int			next;
		int			err;

		if (create && mkdirat(fd, part, 0755) != 0 && errno != EEXIST)
		{
			err = errno;
			close(fd);
			fs_error(err, "create directory", what);
		}
		next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = errno;
		close(fd);
		if (next < 0)
		{
			/* looking, not creating: a link or a file where a directory of
			 * ours would be means ours is not there */
			if (!create && (err == ENOENT || err == ELOOP || err == ENOTDIR))
				return -1;
			fs_error(err, "open directory", what);
		}
		fd = next;
	}
	return fd;
}

/* Remove entry `name` of directory `dirfd`, a whole tree if it is one. */
static void
remove_tree(int dirfd, const char *name, const char *what)
{
	int			fd;
	DIR		   *dir;
	struct dirent *de;
	int			err;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return;					/* a file or a symbolic link: gone */
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return;
		fs_error(errno, "open directory", what);
	}
	dir = fdopendir(fd);
	if (dir == NULL)
	{
		err = errno;
		close(fd);
		fs_error(err, "read directory", what);
	}
	while ((de = readdir(dir)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		PG_TRY();
		{
			remove_tree(fd, de->d_name, what);
		}
		PG_CATCH();
		{
			closedir(dir);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	closedir(dir);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		fs_error(errno, "remove directory", what);
}

/*
 * The temporary file a write of `name` goes through: the reserved prefix,
 * an unpredictable part (nothing can be planted at the name in advance)
 * and the file's name, cut to the file-name limit.
 */
static char *
temp_name(const char *name)
{
	uint8		bytes[8];
	char	   *tmp;

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not generate a random temporary file name")));
	tmp = psprintf(TMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x.%s", bytes[0], bytes[1], bytes[2],
				   bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], name);
	if (strlen(tmp) > 255)
		tmp[255] = '\0';
	return tmp;
}

/*
 * Write `data` to dir/name atomically: a new temporary file, created
 * exclusively and never through a link, renamed over it.
 */
static void
write_file(const char *root, const char *dir, const char *name, const char *data, size_t len)
{
	char	   *what = psprintf("%s/%s", dir, name);
	int			dirfd = open_dir(root, dir, true, what);
	char	   *tmp = temp_name(name);
	int			fd;
	int			err = 0;
	size_t		done = 0;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		err = errno;
		close(dirfd);
		fs_error(err, "create file", what);
	}
	while (done < len && err == 0)
	{
		ssize_t		n = write(fd, data + done, len - done);

		if (n < 0 && errno != EINTR)
			err = errno;
		else if (n > 0)
			done += n;
	}
	if (err == 0 && fsync(fd) != 0)
		err = errno;
	close(fd);
	if (err == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
		err = errno;
	if (err != 0)
	{
		(void) unlinkat(dirfd, tmp, 0);
		close(dirfd);
		fs_error(err, "write file", what);
	}
	/* the rename is durable once the directory is */
	if (fsync(dirfd) != 0)
	{
		err = errno;
		close(dirfd);
		fs_error(err, "sync directory of", what);
	}
	close(dirfd);
}

/* ---- specs and records --------------------------------------------------- */

static char *
field(Jsonb *j, const char *name)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&j->root, name, strlen(name), NULL);

	if (v == NULL || v->type != jbvString)
		elog(ERROR, "coco_target: localfs record lacks \"%s\"", name);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static Jsonb *
sub_object(Jsonb *j, const char *name)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&j->root, name, strlen(name), NULL);

	if (v == NULL || v->type != jbvBinary)
		elog(ERROR, "coco_target: localfs spec lacks \"%s\"", name);
	return JsonbValueToJsonb(v);
}

/*
 * Both providers: the record says what exists (a directory's place; a
 * file's place, size and fingerprint).  A change is written over in place
 * (an upsert, never remove-then-create).
 */
static void
localfs_reconcile(const CocoTargetState *st, CocoDecision *d)
{
	Jsonb	   *record = NULL;

	memset(d, 0, sizeof(*d));
	if (st->desired)
		record = strcmp(st->provider, FILE_PROVIDER) == 0 ? sub_object(st->desired, "record") : st->desired;
	d->record = record;
	if (record == NULL)
	{
		d->action = st->nprev > 0 ? COCO_DELETE : COCO_NO_ACTION;
		return;
	}
	if (st->nprev == 0)
	{
		d->action = COCO_INSERT;
		return;
	}
	d->action = st->prev_may_be_missing ? COCO_UPSERT : COCO_NO_ACTION;
	for (int i = 0; i < st->nprev; i++)
		if (compareJsonbContainers(&record->root, &st->prev[i]->root) != 0)
			d->action = COCO_UPSERT;
}

/* ---- localfs.dir --------------------------------------------------------- */

/* Remove a directory as its record names it, and everything in it. */
static void
remove_dir(Jsonb *rec)
{
	char	   *path = field(rec, "path");
	char	   *parent = pstrdup(path);
	char	   *slash = strrchr(parent, '/');
	char	   *root = context_root(field(rec, "context"));
	int			fd;

	if (slash)
		*slash = '\0';
	fd = slash ? open_dir(root, parent, false, path) : open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
	{
		if (slash)
			return;				/* its parent is gone: so is it */
		fs_error(errno, "open localfs root", root);
	}
	PG_TRY();
	{
		remove_tree(fd, slash ? slash + 1 : path, path);
	}
	PG_CATCH();
	{
		close(fd);
		PG_RE_THROW();
	}
	PG_END_TRY();
	close(fd);
}

static void
dir_apply(CocoPlannedAction *actions, int n)
{
	for (int i = 0; i < n; i++)
	{
		const CocoTargetState *st = actions[i].state;

		/* every previous record names the same place: the key's */
		if (actions[i].decision.action == COCO_DELETE)
			remove_dir(st->prev[st->nprev - 1]);
		else
			close(open_dir(context_root(field(st->desired, "context")), field(st->desired, "path"),
						   true, field(st->desired, "path")));
	}
}

static bool
dir_matches_record(const CocoTargetState *st)
{
	Jsonb	   *rec = st->prev[st->nprev - 1];
	int			fd = open_dir(context_root(field(rec, "context")), field(rec, "path"), false,
							  field(rec, "path"));

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* ---- localfs.file -------------------------------------------------------- */

static void
file_apply(CocoPlannedAction *actions, int n)
{
	for (int i = 0; i < n; i++)
	{
		Jsonb	   *spec = actions[i].state->desired;
		Jsonb	   *rec = sub_object(spec, "record");
		char	   *b64 = field(spec, "content");
		int			len = pg_b64_dec_len(strlen(b64));
		char	   *data = palloc(len + 1);

		len = pg_b64_decode(b64, strlen(b64), data, len);
		if (len < 0)
			elog(ERROR, "coco_target: corrupt content in the spec of \"%s\"", actions[i].state->name);
		write_file(context_root(field(rec, "context")), field(rec, "dir"), field(rec, "name"), data, len);
		coco_fault("after_outside_write");
	}
}

static void
file_retire(CocoPlannedAction *actions, int n)
{
	for (int i = 0; i < n; i++)
	{
		const CocoTargetState *st = actions[i].state;
		Jsonb	   *rec = st->prev[st->nprev - 1];
		char	   *what = psprintf("%s/%s", field(rec, "dir"), field(rec, "name"));
		int			fd = open_dir(context_root(field(rec, "context")), field(rec, "dir"), false, what);

		if (fd < 0)
			continue;
		if (unlinkat(fd, field(rec, "name"), 0) != 0 && errno != ENOENT)
		{
			int			err = errno;

			close(fd);
			fs_error(err, "remove file", what);
		}
		close(fd);
	}
}

/* Drift: the file is gone or its size changed behind our back. */
static bool
file_matches_record(const CocoTargetState *st)
{
	Jsonb	   *rec = st->prev[st->nprev - 1];
	char	   *what = psprintf("%s/%s", field(rec, "dir"), field(rec, "name"));
	int			fd = open_dir(context_root(field(rec, "context")), field(rec, "dir"), false, what);
	struct stat sb;
	bool		ok;
	JsonbValue *size = getKeyJsonValueFromContainer(&rec->root, "size", 4, NULL);

	if (fd < 0)
		return false;
	ok = fstatat(fd, field(rec, "name"), &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
		size != NULL && size->type == jbvNumeric &&
		(int64) sb.st_size == DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(size->val.numeric)));
	close(fd);
	return ok;
}

/* A file names its directory's state in its spec's "parent". */
static char *
file_container_name(Jsonb *spec)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&spec->root, "parent", 6, NULL);

	if (v == NULL || v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a localfs file's record names no directory")));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* For coco.plan: what happens to files. */
static const char *
localfs_plan_action(const CocoPlannedAction *a, StringInfo hazards)
{
	appendStringInfoString(hazards, a->decision.action == COCO_DELETE ?
						   ", \"removes_files\"" : ", \"writes_files\"");
	return NULL;
}

static const CocoProvider dir_provider = {
	.name = DIR_PROVIDER,
	.reconcile = localfs_reconcile,
	.apply = dir_apply,
	.matches_record = dir_matches_record,
	.outside_transaction = true,
	.plan_action = localfs_plan_action,
};

static const CocoProvider file_provider = {
	.name = FILE_PROVIDER,
	.parent = DIR_PROVIDER,
	.reconcile = localfs_reconcile,
	.apply = file_apply,
	.retire = file_retire,
	.matches_record = file_matches_record,
	.outside_transaction = true,
	.container_name = file_container_name,
	.plan_action = localfs_plan_action,
};

void
coco_localfs_register(void)
{
	static const char *const providers[] = {DIR_PROVIDER, FILE_PROVIDER, NULL};

	coco_register_root_provider(&dir_provider);
	coco_register_root_provider(&file_provider);
	coco_register_context_kind("localfs", "the server's file access below its root", check_settings,
							   providers);
}

/* ---- the declaration API -------------------------------------------------- */

static void
stage(CocoApp *app, ArrayType *component, const char *provider, StringInfo key,
	  const char *display, StringInfo spec)
{
	if (!coco_stage_state(app, component, provider, NULL, key, display,
						  DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(spec->data)))))
		coco_stage_conflict(app, component, provider, NULL, key,
							psprintf("\"%s\" is declared twice", display));
}

static void
dir_key(const char *context, const char *path, StringInfo key)
{
	coco_key_begin_tuple(key);
	coco_key_put_str(key, context, strlen(context));
	coco_key_put_str(key, path, strlen(path));
	coco_key_end_tuple(key);
}

static void
check_context(CocoApp *app, const char *context)
{
	coco_validate_identifier(context, "context key");
	(void) coco_context_settings(context, "localfs", app->owner);
}

/* coco.declare_dir(app, context, path, component) */
PG_FUNCTION_INFO_V1(coco_declare_dir);
Datum
coco_declare_dir(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	char	   *context;
	char	   *path;
	StringInfoData key;
	StringInfoData spec;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	context = text_to_cstring(coco_text_arg(fcinfo, 1, "context"));
	path = text_to_cstring(coco_text_arg(fcinfo, 2, "path"));
	check_context(app, context);
	check_dir_path(path);

	initStringInfo(&key);
	dir_key(context, path, &key);
	initStringInfo(&spec);
	appendStringInfoString(&spec, "{\"context\": ");
	escape_json(&spec, context);
	appendStringInfoString(&spec, ", \"path\": ");
	escape_json(&spec, path);
	appendStringInfoChar(&spec, '}');
	stage(app, coco_component_arg(fcinfo, 3), DIR_PROVIDER, &key, psprintf("%s:%s", context, path), &spec);
	SPI_finish();
	PG_RETURN_VOID();
}

/* coco.declare_file(app, context, dir_path, file_name, content, component) */
PG_FUNCTION_INFO_V1(coco_declare_file);
Datum
coco_declare_file(PG_FUNCTION_ARGS)
{
	CocoApp    *app;
	char	   *context;
	char	   *dir;
	char	   *name;
	bytea	   *content;
	CocoFingerprint fp;
	StringInfoData key;
	StringInfoData spec;
	char	   *b64;
	int			b64len;
	char	   *fphex;

	SPI_connect();
	app = coco_app_lookup(text_to_cstring(coco_text_arg(fcinfo, 0, "app")));
	coco_declaring(app);
	context = text_to_cstring(coco_text_arg(fcinfo, 1, "context"));
	dir = text_to_cstring(coco_text_arg(fcinfo, 2, "dir_path"));
	name = text_to_cstring(coco_text_arg(fcinfo, 3, "file_name"));
	coco_require_arg(fcinfo, 4, "content");
	content = PG_GETARG_BYTEA_PP(4);
	check_context(app, context);
	check_dir_path(dir);
	check_file_name(name);
	if (VARSIZE_ANY_EXHDR(content) > 64 * 1024 * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("content of file \"%s/%s\" is too large (%zu bytes)", dir, name,
						(size_t) VARSIZE_ANY_EXHDR(content)),
				 errdetail("Files of at most 64 MB can be declared.")));

	/* the key: the directory's, then the file's name under a symbol */
	initStringInfo(&key);
	coco_key_begin_tuple(&key);
	coco_key_put_str(&key, context, strlen(context));
	coco_key_put_str(&key, dir, strlen(dir));
	coco_key_put_symbol(&key, "@file", 5);
	coco_key_put_str(&key, name, strlen(name));
	coco_key_end_tuple(&key);

	coco_fingerprint_bytes(VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content), &fp);
	fphex = palloc(COCO_FINGERPRINT_LEN * 2 + 1);
	hex_encode((const char *) fp.bytes, COCO_FINGERPRINT_LEN, fphex);
	fphex[COCO_FINGERPRINT_LEN * 2] = '\0';
	b64len = pg_b64_enc_len(VARSIZE_ANY_EXHDR(content));
	b64 = palloc(b64len + 1);
	b64len = pg_b64_encode(VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content), b64, b64len);
	b64[b64len] = '\0';

	/* "parent" names the directory's state: the engine pairs them by it */
	initStringInfo(&spec);
	appendStringInfoString(&spec, "{\"parent\": ");
	escape_json(&spec, psprintf("%s:%s", context, dir));
	appendStringInfoString(&spec, ", \"record\": {\"context\": ");
	escape_json(&spec, context);
	appendStringInfoString(&spec, ", \"dir\": ");
	escape_json(&spec, dir);
	appendStringInfoString(&spec, ", \"name\": ");
	escape_json(&spec, name);
	appendStringInfoString(&spec, ", \"parent\": ");
	escape_json(&spec, psprintf("%s:%s", context, dir));
	appendStringInfo(&spec, ", \"size\": %zu, \"fp\": \"%s\"}, \"content\": \"%s\"}",
					 (size_t) VARSIZE_ANY_EXHDR(content), fphex, b64);
	stage(app, coco_component_arg(fcinfo, 5), FILE_PROVIDER, &key,
		  psprintf("%s:%s/%s", context, dir, name), &spec);
	SPI_finish();
	PG_RETURN_VOID();
}
