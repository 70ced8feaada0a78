# coco_target — PGXS build.
EXTENSION    = coco_target
EXTVERSION   = 0.7
MODULE_big   = coco_target
# the layers of src/ (see docs/architecture.md), lowest first
LAYERS       = core util store engine connectors/postgres connectors/localfs connectors/sql sched bgworker api
OBJS         = $(patsubst %.c,%.o,$(wildcard src/*.c $(addsuffix /*.c,$(addprefix src/,$(LAYERS)))))
DATA         = $(wildcard extension/coco_target--*.sql)
HEADERS      = src/include/coco_target.h
SHLIB_LINK  += -lxxhash
PG_CPPFLAGS += -Isrc -Isrc/include -Isrc/sched -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=coco_target

# Isolation specs (concurrent sessions), run by installcheck after REGRESS.
ISOLATION      = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=coco_target

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: every object depends on them.
# (After the include, so the default goal stays PGXS's "all".)
$(OBJS): $(wildcard src/*.h src/*/*.h src/*/*/*.h)
