// Options arguments (jsonb) read with PostgreSQL's own jsonb iterator and handed to the
// core as typed values (recsys::OptionList): the core parses no JSON text.
//
// One rule for every function: an absent or SQL NULL argument, or the jsonb null, means
// no options; any other non-object is refused ("<fn>: options must be a JSON object").
// Values are scalars, arrays or objects nested at most two levels below the options
// object (e.g. train_content's {"weights": {"field": 1}}); deeper nesting is refused,
// naming the option. Reading is linear in the size of the value and answers query
// cancel while it iterates (CHECK_FOR_INTERRUPTS every 1,024 tokens).
#pragma once
#include "pg_common.h"

#include "options.h"

extern "C" {
#include "utils/jsonb.h"
}

namespace recsys_pg {

// The flattened options: a palloc'd array of plain tokens (no C++ object is alive while
// PostgreSQL is called). Opaque outside jsonb_options.cpp.
struct JsonbOptions;

// Reads a jsonb value (nullptr = no options); ereports for a non-object or deep nesting.
JsonbOptions* read_jsonb_options(Jsonb* jb, const char* fn);
// Reads options argument argno (absent or NULL = no options).
JsonbOptions* options_arg(FunctionCallInfo fcinfo, int argno, const char* fn);
// Reads the jsonb value stored in `bytes` (a copy of a jsonb varlena, as the training
// states carry their options; empty = no options).
JsonbOptions* options_from_bytes(const std::string& bytes, const char* fn);

// The typed list. Allocates C++ objects: call it under recsys_guard only.
recsys::OptionList to_option_list(const JsonbOptions* options);

}  // namespace recsys_pg
