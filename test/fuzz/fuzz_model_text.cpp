// libFuzzer harness: the model type's text input ("recsys:" + base64) as
// recsys.model_in runs it: decoded size, decode into a buffer of exactly that size, full
// validation. Every rejection must be Error(InvalidModel); an accepted value must give
// back the same text.
#include <string>

#include "fuzz_common.h"
#include "model_format.h"

using namespace recsys;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (uint64_t(1) << 20)) return 0;
  const char* text = reinterpret_cast<const char*>(data);
  try {
    const uint64_t n = model_text_decoded_size(text, size);
    if (n > (uint64_t(1) << 21)) return 0;
    recsys_fuzz::Aligned buf(nullptr, 0);
    buf.words.assign((n + 7) / 8 + 1, 0);
    buf.size = n;
    model_from_text(text, size, buf.data(), n);
    validate_model(buf.data(), n);
    std::string back(model_text_size(n) + 1, '\0');
    model_to_text(buf.data(), n, &back[0]);
    back.resize(back.size() - 1);
    // The same text, except that non-zero bits below the last base64 padding may be
    // dropped (they encode no byte).
    FUZZ_CHECK(back.size() == size);
    FUZZ_CHECK(back.compare(0, size >= 4 ? size - 4 : 0, text, size >= 4 ? size - 4 : 0) == 0);
  } catch (const Error& e) {
    FUZZ_CHECK(e.kind() == ErrorKind::InvalidModel);
  }
  return 0;
}
