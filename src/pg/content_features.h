// train_content's reading of a metadata row (one jsonb object per row; see content.cpp),
// shared by every aggregate that takes metadata (train_content, train_hybrid_items,
// train_hybrid_users).
#pragma once
#include "pg_common.h"

extern "C" {
#include "utils/jsonb.h"
}

#include "content.h"

namespace recsys_pg {

// Adds the features of one row's jsonb object to the state for entity `item`; errors
// (not an object, nested values, NaN numbers) name `fn`.
void add_features(recsys::ContentState* st, uint32_t item, Jsonb* jb, const char* fn);
// One row of a metadata aggregate: the ID in argument id_arg (NULL: counted in
// rows_skipped) and its features in the next argument (NULL: the entity without any).
void add_metadata_row(recsys::ContentState* st, FunctionCallInfo fcinfo, int id_arg, Oid id_base_type,
                      const char* fn);

}  // namespace recsys_pg
