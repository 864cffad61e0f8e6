# recsys: PGXS build of the PostgreSQL extension (C++17 + Eigen).
#   make && make install        (OPTFLAGS= to drop -march=native, e.g. for portable packages)
#   make installcheck           (pg_regress against a running server; see test/run_tests.sh)
EXTENSION = recsys
EXTVERSION = 0.2.0
MODULE_big = recsys
# The current script, every older one (CREATE EXTENSION ... VERSION) and the upgrades.
DATA = $(wildcard recsys--*.sql)

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

OPTFLAGS ?= -march=native
# GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics once Eigen's
# kernels are inlined (a known false positive, GCC bug 105593): off, so real warnings
# stay visible on machines with AVX-512.
NOWARN_AVX512 = -Wno-maybe-uninitialized
PG_CPPFLAGS = -I$(srcdir)/src/core -I$(srcdir)/src/pg -isystem /usr/include/eigen3 -DEIGEN_DONT_PARALLELIZE -DEIGEN_NO_DEBUG
PG_CXXFLAGS = -std=c++17 -O3 $(OPTFLAGS) -fPIC -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register $(NOWARN_AVX512) -MMD -MP
SHLIB_LINK = -lstdc++ -lpthread

# No LLVM bitcode for JIT inlining: it would need clang for the C++ sources.
override with_llvm := no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS compiles C++ with CXXFLAGS; keep PostgreSQL's C-only flags out of it.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement -Wno-format-truncation -Wno-stringop-truncation,$(CXXFLAGS))

# Header dependencies (PGXS tracks them only in --enable-depend builds).
-include $(OBJS:.o=.d)
EXTRA_CLEAN = $(OBJS:.o=.d)
