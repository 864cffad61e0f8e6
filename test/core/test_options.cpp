// OptionReader (typed options with range-checked getters, O(n log n) name checks) and
// parse_als_options. Options are written as JSON literals turned into the typed list by
// the test helper (json_options.h); in the extension the jsonb iterator does that.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <chrono>

#include "json_options.h"
#include "options.h"
#include "training.h"

using recsys::ErrorKind;
using recsys::OptionList;
using recsys::OptionValue;
using test_support::json_options;

// An OptionReader over a JSON literal.
struct JsonReader : recsys::OptionReader {
  JsonReader(const std::string& json, const std::string& ctx) : recsys::OptionReader(json_options(json), ctx) {}
};
using OptionReader = JsonReader;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Runs fn, expects Error(InvalidParameter) whose message holds every needle.
template <class Fn>
void expect_invalid(Fn fn, const std::vector<std::string>& needles, const std::string& what) {
  try {
    fn();
    ADD_FAILURE() << "no exception for " << what;
  } catch (const recsys::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter) << what << ": " << e.what();
    for (auto& n : needles) EXPECT_TRUE(contains(e.what(), n)) << what << ": \"" << e.what() << "\" lacks " << n;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a recsys::Error for " << what << ": " << e.what();
  }
}

// Parsing alone fails.
void expect_parse_error(const std::string& json, const std::vector<std::string>& needles) {
  expect_invalid([&] { OptionReader r(json, "ctx_fn"); }, needles, "parse of " + json);
}

// Reading option "x" of `json` with getter fn fails, naming "x".
template <class Fn>
void expect_get_error(const std::string& json, Fn fn, const std::string& name = "x") {
  expect_invalid(
      [&] {
        OptionReader r(json, "ctx_fn");
        fn(r);
      },
      {"ctx_fn", "\"" + name + "\""}, "reading " + json);
}

}  // namespace

// ---------------------------------------------------------------- empty inputs

TEST(OptionReader, EmptyNullAndEmptyObjectMeanNoOptions) {
  for (const std::string json : {"", "   ", "null", "  null\n", "{}", " { } ", "\t{\r\n}\n"}) {
    SCOPED_TRACE("json: [" + json + "]");
    OptionReader r(json, "ctx");
    EXPECT_FALSE(r.has("factors"));
    EXPECT_EQ(r.get_int("factors", 7, 0, 10), 7);
    EXPECT_EQ(r.get_double("alpha", 2.5, 0, 10), 2.5);
    EXPECT_TRUE(r.get_bool("verbose", true));
    EXPECT_EQ(r.get_string("mode", "fast", {"fast", "slow"}), "fast");
    EXPECT_NO_THROW(r.reject_unknown());
  }
}

// ---------------------------------------------------------------- values

TEST(OptionReader, ReadsEachType) {
  OptionReader r(R"({"i": 12, "neg": -3, "d": 0.25, "e": 1.5e3, "t": true, "f": false, "s": "hello",
                     "esc": "a\"b\\c\nd\u0041\u00e9", "n": null, "int_as_float": 4.0})",
                 "ctx");
  EXPECT_TRUE(r.has("i"));
  EXPECT_FALSE(r.has("n"));  // null counts as absent
  EXPECT_FALSE(r.has("missing"));
  EXPECT_EQ(r.get_int("i", 0, 0, 100), 12);
  EXPECT_EQ(r.get_int("neg", 0, -10, 10), -3);
  EXPECT_DOUBLE_EQ(r.get_double("d", 0, 0, 1), 0.25);
  EXPECT_DOUBLE_EQ(r.get_double("e", 0, 0, 1e4), 1500.0);
  EXPECT_TRUE(r.get_bool("t", false));
  EXPECT_FALSE(r.get_bool("f", true));
  EXPECT_EQ(r.get_string("s", "", {}), "hello");
  EXPECT_EQ(r.get_string("esc", "", {}), "a\"b\\c\ndA\xc3\xa9");
  EXPECT_EQ(r.get_int("n", 99, 0, 100), 99);  // null = the default
  EXPECT_EQ(r.get_int("int_as_float", 0, 0, 10), 4);
  EXPECT_EQ(r.get_int("missing", -1, -5, 5), -1);
  EXPECT_NO_THROW(r.reject_unknown());
}

TEST(OptionReader, IntegerBoundsAreInclusive) {
  OptionReader r(R"({"lo": 1, "hi": 1024, "big": 9007199254740992, "small": -9007199254740992})", "ctx");
  EXPECT_EQ(r.get_int("lo", 0, 1, 1024), 1);
  EXPECT_EQ(r.get_int("hi", 0, 1, 1024), 1024);
  EXPECT_EQ(r.get_int("big", 0, 0, int64_t(1) << 53), int64_t(1) << 53);
  EXPECT_EQ(r.get_int("small", 0, -(int64_t(1) << 53), 0), -(int64_t(1) << 53));
}

TEST(OptionReader, StringChoices) {
  OptionReader r(R"({"mode": "slow"})", "ctx");
  EXPECT_EQ(r.get_string("mode", "fast", {"fast", "slow"}), "slow");
  expect_get_error(R"({"x": "medium"})", [](OptionReader& r) { r.get_string("x", "fast", {"fast", "slow"}); });
  // The message lists the allowed values and the bad one.
  try {
    OptionReader r2(R"({"x": "medium"})", "ctx");
    r2.get_string("x", "fast", {"fast", "slow"});
    ADD_FAILURE() << "no exception";
  } catch (const recsys::Error& e) {
    EXPECT_TRUE(contains(e.what(), "fast")) << e.what();
    EXPECT_TRUE(contains(e.what(), "slow")) << e.what();
    EXPECT_TRUE(contains(e.what(), "medium")) << e.what();
  }
}

// ---------------------------------------------------------------- unknown options

TEST(OptionReader, UnknownOptionIsNamed) {
  OptionReader r(R"({"factors": 8, "factor": 9})", "train_x");
  EXPECT_EQ(r.get_int("factors", 1, 1, 100), 8);
  expect_invalid([&] { r.reject_unknown(); }, {"train_x", "unknown option \"factor\"", "\"factors\""},
                 "unknown option");
}

TEST(OptionReader, UnknownOptionWithNoGetters) {
  OptionReader r(R"({"bogus": true})", "ctx");
  expect_invalid([&] { r.reject_unknown(); }, {"\"bogus\""}, "unknown option without getters");
}

TEST(OptionReader, NullUnknownOptionIsStillUnknown) {
  OptionReader r(R"({"typo": null})", "ctx");
  r.get_int("real", 0, 0, 1);
  expect_invalid([&] { r.reject_unknown(); }, {"\"typo\""}, "null unknown option");
}

TEST(OptionReader, AllKnownOptionsPass) {
  OptionReader r(R"({"a": 1, "b": null})", "ctx");
  r.get_int("a", 0, 0, 5);
  r.get_int("b", 0, 0, 5);
  EXPECT_NO_THROW(r.reject_unknown());
}

// ---------------------------------------------------------------- wrong types

TEST(OptionReader, WrongTypesNameTheOption) {
  auto get_int = [](OptionReader& r) { r.get_int("x", 0, -100, 100); };
  auto get_double = [](OptionReader& r) { r.get_double("x", 0, -100, 100); };
  auto get_bool = [](OptionReader& r) { r.get_bool("x", false); };
  auto get_string = [](OptionReader& r) { r.get_string("x", "", {}); };
  for (const char* json : {R"({"x": "5"})", R"({"x": true})", R"({"x": false})"}) {
    expect_get_error(json, get_int);
    expect_get_error(json, get_double);
  }
  for (const char* json : {R"({"x": 1})", R"({"x": "true"})", R"({"x": 0})"}) expect_get_error(json, get_bool);
  for (const char* json : {R"({"x": 1})", R"({"x": true})"}) expect_get_error(json, get_string);
}

TEST(OptionReader, NonIntegerForIntNamesTheOption) {
  auto get_int = [](OptionReader& r) { r.get_int("x", 0, -100, 100); };
  for (const char* json : {R"({"x": 2.5})", R"({"x": -0.1})", R"({"x": 1e-3})", R"({"x": 99.999})"}) {
    expect_get_error(json, get_int);
  }
}

TEST(OptionReader, OutOfRangeNamesTheOptionAndBounds) {
  expect_invalid(
      [] {
        OptionReader r(R"({"x": 11})", "ctx_fn");
        r.get_int("x", 0, 1, 10);
      },
      {"ctx_fn", "\"x\"", "1", "10", "11"}, "int above range");
  expect_get_error(R"({"x": 0})", [](OptionReader& r) { r.get_int("x", 5, 1, 10); });
  expect_get_error(R"({"x": -1})", [](OptionReader& r) { r.get_int("x", 0, 0, 10); });
  expect_get_error(R"({"x": 1e300})", [](OptionReader& r) { r.get_int("x", 0, 0, 10); });
  expect_get_error(R"({"x": -1e300})", [](OptionReader& r) { r.get_int("x", 0, 0, 10); });
  expect_get_error(R"({"x": 1.5})", [](OptionReader& r) { r.get_double("x", 0, 0, 1); });
  expect_get_error(R"({"x": -0.001})", [](OptionReader& r) { r.get_double("x", 0, 0, 1); });
  // beyond double range (the border reads such a numeric as Infinity): "out of range"
  expect_get_error(R"({"x": 1e309})", [](OptionReader& r) { r.get_double("x", 0, 0, 1e300); });
  expect_get_error(R"({"x": 1e309})", [](OptionReader& r) { r.get_int("x", 0, 0, 10); });
  // Exactly on the bounds is fine.
  OptionReader r(R"({"a": 0, "b": 1})", "ctx");
  EXPECT_EQ(r.get_double("a", 5, 0, 1), 0.0);
  EXPECT_EQ(r.get_double("b", 5, 0, 1), 1.0);
}

// ---------------------------------------------------------------- malformed JSON

TEST(OptionReader, DuplicateKeysNameTheOption) {
  expect_parse_error(R"({"alpha": 1, "alpha": 2})", {"ctx_fn", "\"alpha\"", "twice"});
  expect_parse_error(R"({"a": 1, "b": 2, "a": null})", {"\"a\""});
}

TEST(OptionReader, NestedValuesNameTheOptionWhenAScalarIsWanted) {
  auto scalar_getters = [](OptionReader& r) {
    r.get_int("x", 0, 0, 10);
  };
  for (const char* json : {R"({"x": [1, 2]})", R"({"x": {"inner": 1}})", R"({"x": {}})", R"({"x": []})"}) {
    SCOPED_TRACE(json);
    expect_invalid(
        [&] {
          OptionReader r(json, "ctx_fn");
          scalar_getters(r);
        },
        {"ctx_fn", "\"x\"", "not an array or object"}, json);
    expect_get_error(json, [](OptionReader& r) { r.get_double("x", 0, 0, 1); });
    expect_get_error(json, [](OptionReader& r) { r.get_bool("x", false); });
    expect_get_error(json, [](OptionReader& r) { r.get_string("x", "", {}); });
  }
  // get_value hands nested values out as they are.
  OptionReader r(R"({"w": {"a": 1, "b": [true]}})", "ctx");
  const OptionValue* w = r.get_value("w");
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->type, OptionValue::Type::Object);
  ASSERT_EQ(w->members.size(), 2u);
  EXPECT_EQ(w->members[1].second.elements.at(0).boolean, true);
  EXPECT_EQ(r.get_value("missing"), nullptr);
  EXPECT_NO_THROW(r.reject_unknown());
}

// ---------------------------------------------------------------- large objects

// Issue 10, defect 4: 100,000 names are checked in O(n log n) (the old reader compared
// every pair: ~26 s). Generous bound: the work is a few milliseconds.
TEST(OptionReader, HundredThousandNamesAreFast) {
  OptionList many;
  for (int i = 0; i < 100000; ++i) many.emplace_back("option_" + std::to_string(i), OptionValue::of_number(i));
  const auto t0 = std::chrono::steady_clock::now();
  {
    recsys::OptionReader r(many, "ctx_fn");
    EXPECT_EQ(r.get_int("option_99999", 0, 0, 1000000), 99999);
    expect_invalid([&] { r.reject_unknown(); }, {"unknown option \"option_0\"", "\"option_99999\""},
                   "many unknown");
  }
  // a duplicate at the far end is still found
  OptionList dup = many;
  dup.emplace_back("option_5", OptionValue::of_bool(true));
  expect_invalid([&] { recsys::OptionReader r(dup, "ctx_fn"); }, {"\"option_5\"", "twice"}, "late duplicate");
  // and so is one in a nested object
  OptionValue weights;
  weights.type = OptionValue::Type::Object;
  weights.members = many;
  weights.members.emplace_back("option_7", OptionValue::of_number(1));
  expect_invalid([&] { recsys::require_unique_names(weights.members, "ctx_fn", "field"); },
                 {"field \"option_7\" is given twice"}, "nested duplicate");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 2.0);
}

TEST(OptionReader, UnknownIsTheFirstInTheOrderGiven) {
  OptionList l;
  l.emplace_back("zeta", OptionValue::of_number(1));
  l.emplace_back("alpha", OptionValue::of_number(1));
  recsys::OptionReader r(l, "ctx");
  r.get_int("factors", 1, 1, 2);
  expect_invalid([&] { r.reject_unknown(); }, {"unknown option \"zeta\"", "(valid options: \"factors\")"},
                 "order");
}

TEST(OptionReader, ValidListNamesEachOptionOnce) {
  OptionReader r(R"({"typo": 1})", "ctx");
  r.get_int("a", 0, 0, 1);
  r.get_int("a", 0, 0, 1);
  r.get_bool("b", false);
  expect_invalid([&] { r.reject_unknown(); }, {"(valid options: \"a\", \"b\")"}, "listed once");
}

// ---------------------------------------------------------------- JSON helpers

TEST(JsonHelpers, EscapeAndNumber) {
  EXPECT_EQ(recsys::json_escape("plain"), "\"plain\"");
  EXPECT_EQ(recsys::json_escape("a\"b\\c\n\r\t"), "\"a\\\"b\\\\c\\n\\r\\t\"");
  EXPECT_EQ(recsys::json_escape(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(recsys::json_escape("\xc3\xa9"), "\"\xc3\xa9\"");
  EXPECT_EQ(recsys::json_number(1.0), "1");
  EXPECT_EQ(recsys::json_number(0.1), "0.1");
  EXPECT_EQ(recsys::json_number(-2.5), "-2.5");
  EXPECT_EQ(recsys::json_number(NAN), "null");
  EXPECT_EQ(recsys::json_number(INFINITY), "null");
  EXPECT_EQ(recsys::json_number(-INFINITY), "null");
  // Reads back exactly: as a double, or, for a value that is exactly a float (a float
  // parameter widened), at least as that float.
  for (double v : {0.01, static_cast<double>(0.01f), static_cast<double>(1e-9f), 1.0 / 3.0, 1e-300,
                   6.02214076e23, -123456789.125, static_cast<double>(3.4e38f)}) {
    std::string s = recsys::json_number(v);
    if (static_cast<double>(static_cast<float>(v)) == v) {
      EXPECT_EQ(std::strtof(s.c_str(), nullptr), static_cast<float>(v)) << s;
    } else {
      EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
    }
    EXPECT_LE(s.size(), 24u) << s;
  }
}

// ---------------------------------------------------------------- parse_als_options

TEST(AlsOptions, Defaults) {
  for (const std::string json : {"", "null", "{}"}) {
    recsys::AlsTrainingOptions o = recsys::parse_als_options(json);
    EXPECT_EQ(o.als.factors, 64);
    EXPECT_EQ(o.als.iterations, 15);
    EXPECT_FLOAT_EQ(o.als.regularization, 20.0f);  // test/eval_defaults.sh (issue 15)
    EXPECT_FLOAT_EQ(o.als.alpha, 1.0f);
    EXPECT_EQ(o.als.cg_steps, 3);
    EXPECT_EQ(o.als.seed, 42u);
    EXPECT_FLOAT_EQ(o.als.init_scale, 0.01f);
    EXPECT_TRUE(o.als.compute_loss);
    EXPECT_TRUE(o.store_seen);
    EXPECT_FALSE(o.verbose);
    EXPECT_EQ(o.threads, 0);
  }
}

TEST(AlsOptions, EachOptionIsRead) {
  using recsys::parse_als_options;
  EXPECT_EQ(parse_als_options(R"({"factors": 8})").als.factors, 8);
  EXPECT_EQ(parse_als_options(R"({"iterations": 0})").als.iterations, 0);
  EXPECT_EQ(parse_als_options(R"({"iterations": 40})").als.iterations, 40);
  EXPECT_FLOAT_EQ(parse_als_options(R"({"regularization": 0.5})").als.regularization, 0.5f);
  EXPECT_FLOAT_EQ(parse_als_options(R"({"regularization": 0})").als.regularization, 0.0f);
  EXPECT_FLOAT_EQ(parse_als_options(R"({"alpha": 40})").als.alpha, 40.0f);
  EXPECT_EQ(parse_als_options(R"({"cg_steps": 7})").als.cg_steps, 7);
  EXPECT_EQ(parse_als_options(R"({"seed": 0})").als.seed, 0u);
  EXPECT_EQ(parse_als_options(R"({"seed": 9007199254740992})").als.seed, uint64_t(1) << 53);
  EXPECT_FLOAT_EQ(parse_als_options(R"({"init_scale": 0.5})").als.init_scale, 0.5f);
  EXPECT_FALSE(parse_als_options(R"({"calculate_loss": false})").als.compute_loss);
  EXPECT_FALSE(parse_als_options(R"({"store_seen": false})").store_seen);
  EXPECT_TRUE(parse_als_options(R"({"verbose": true})").verbose);
  EXPECT_EQ(parse_als_options(R"({"threads": 3})").threads, 3);
  // Null means the default.
  EXPECT_EQ(parse_als_options(R"({"factors": null})").als.factors, 64);

  auto all = parse_als_options(
      R"({"factors": 1024, "iterations": 10000, "regularization": 1e9, "alpha": 0, "cg_steps": 1000,
          "seed": 123, "init_scale": 100, "calculate_loss": false, "store_seen": false,
          "verbose": true, "threads": 1024})");
  EXPECT_EQ(all.als.factors, 1024);
  EXPECT_EQ(all.als.iterations, 10000);
  EXPECT_FLOAT_EQ(all.als.regularization, 1e9f);
  EXPECT_FLOAT_EQ(all.als.alpha, 0.0f);
  EXPECT_EQ(all.als.cg_steps, 1000);
  EXPECT_EQ(all.als.seed, 123u);
  EXPECT_FLOAT_EQ(all.als.init_scale, 100.0f);
  EXPECT_FALSE(all.als.compute_loss);
  EXPECT_FALSE(all.store_seen);
  EXPECT_TRUE(all.verbose);
  EXPECT_EQ(all.threads, 1024);
}

TEST(AlsOptions, BadValuesNameTheOption) {
  struct Case {
    const char* json;
    const char* name;
  };
  const Case cases[] = {
      {R"({"factors": 0})", "factors"},
      {R"({"factors": 1025})", "factors"},
      {R"({"factors": 8.5})", "factors"},
      {R"({"factors": "8"})", "factors"},
      {R"({"iterations": -1})", "iterations"},
      {R"({"iterations": 10001})", "iterations"},
      {R"({"regularization": -0.01})", "regularization"},
      {R"({"regularization": true})", "regularization"},
      {R"({"alpha": -1})", "alpha"},
      {R"({"alpha": 1e10})", "alpha"},
      {R"({"cg_steps": 0})", "cg_steps"},
      {R"({"seed": -1})", "seed"},
      {R"({"seed": 9007199254740994})", "seed"},
      {R"({"seed": 1.5})", "seed"},
      {R"({"init_scale": 0})", "init_scale"},
      {R"({"init_scale": 101})", "init_scale"},
      {R"({"calculate_loss": 1})", "calculate_loss"},
      {R"({"store_seen": "yes"})", "store_seen"},
      {R"({"verbose": null, "verbose": true})", "verbose"},
      {R"({"threads": -1})", "threads"},
      {R"({"threads": 1025})", "threads"},
      {R"({"factors": [8]})", "factors"},
      {R"({"factors": 8, "iteration": 3})", "iteration"},
      {R"({"lambda": 0.1})", "lambda"},
  };
  for (const Case& c : cases) {
    expect_invalid([&] { recsys::parse_als_options(c.json); }, {"train_als", std::string("\"") + c.name + "\""},
                   c.json);
  }
}
