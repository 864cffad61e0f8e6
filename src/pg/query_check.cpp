// checked_select(query, caller): the one place where recsys accepts SQL text from a
// user (cross_validate runs it). The text must be exactly one SELECT (VALUES and TABLE
// are SELECTs too) that writes nothing: no second statement, no SELECT INTO, no
// data-modifying WITH. The statement's own text comes back, without a trailing
// semicolon, ready to be used as a subquery.
#include "pg_common.h"

extern "C" {
#include "nodes/parsenodes.h"
#include "parser/parser.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(recsys_checked_select);
}

namespace {

[[noreturn]] void refuse(const char* caller, const char* why) {
  ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s: the query must be one SELECT; %s", caller, why),
                  errhint("Pass the text of a single SELECT (or VALUES) statement.")));
}

// True when a WITH clause holds a data-modifying statement.
bool writes_in_with(const WithClause* with) {
  if (with == nullptr) return false;
  ListCell* lc;
  foreach (lc, with->ctes) {
    const CommonTableExpr* cte = static_cast<const CommonTableExpr*>(lfirst(lc));
    if (!IsA(cte->ctequery, SelectStmt)) return true;
  }
  return false;
}

}  // namespace

Datum recsys_checked_select(PG_FUNCTION_ARGS) {
  const char* query = text_to_cstring(PG_GETARG_TEXT_PP(0));
  const char* caller = text_to_cstring(PG_GETARG_TEXT_PP(1));
  // A syntax error is reported as the caller's, without a cursor position into the
  // statement that called us (the position would point into internal SQL).
  List* statements = nullptr;
  MemoryContext context = CurrentMemoryContext;
  PG_TRY();
  { statements = raw_parser(query, RAW_PARSE_DEFAULT); }
  PG_CATCH();
  {
    MemoryContextSwitchTo(context);
    ErrorData* e = CopyErrorData();
    FlushErrorState();
    ereport(ERROR, (errcode(e->sqlerrcode), errmsg("%s: the query is not valid SQL: %s", caller, e->message),
                    errhint("Pass the text of a single SELECT (or VALUES) statement.")));
  }
  PG_END_TRY();
  if (list_length(statements) == 0) refuse(caller, "the text is empty");
  if (list_length(statements) > 1) refuse(caller, "the text holds more than one statement");
  const RawStmt* raw = linitial_node(RawStmt, statements);
  if (!IsA(raw->stmt, SelectStmt)) refuse(caller, "this statement is not a SELECT");
  const SelectStmt* select = reinterpret_cast<const SelectStmt*>(raw->stmt);
  if (select->intoClause != nullptr) refuse(caller, "SELECT INTO would create a table");
  if (writes_in_with(select->withClause)) refuse(caller, "its WITH clause modifies data");
  // The statement's text: from its start to its end (stmt_len 0 means "to the end of
  // the string"), trailing spaces dropped.
  int start = raw->stmt_location > 0 ? raw->stmt_location : 0;
  int len = raw->stmt_len > 0 ? raw->stmt_len : static_cast<int>(strlen(query)) - start;
  while (len > 0 && (query[start + len - 1] == ' ' || query[start + len - 1] == '\n' || query[start + len - 1] == '\t' ||
                     query[start + len - 1] == '\r' || query[start + len - 1] == ';'))
    --len;
  PG_RETURN_TEXT_P(cstring_to_text_with_len(query + start, len));
}
