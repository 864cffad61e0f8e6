// model_surgery: rewrites bytes inside a recsys model and reseals it (fingerprint and
// checksum), to build the hostile models the integration tests feed to the extension:
// a model whose checksum is right but whose content was crafted.
//
//   model_surgery replace OLD NEW < model.txt > crafted.txt
//   model_surgery version N < model.txt > crafted.txt
//
// reads the model's text form ("recsys:" + base64, as COPY and pg_dump write it),
// replaces the first occurrence of the bytes OLD after the header by NEW (same length;
// both may use \xHH escapes) or sets the header's format version to N, recomputes the
// fingerprint and checksum, and writes the text form.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "model_format.h"

namespace {

// "\xff" escapes to bytes.
std::string unescape(const char* s) {
  std::string out;
  for (const char* p = s; *p; ++p) {
    if (p[0] == '\\' && p[1] == 'x' && p[2] && p[3]) {
      out.push_back(static_cast<char>(std::stoi(std::string(p + 2, 2), nullptr, 16)));
      p += 3;
    } else {
      out.push_back(*p);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const bool replace = argc == 4 && std::strcmp(argv[1], "replace") == 0;
  const bool version = argc == 3 && std::strcmp(argv[1], "version") == 0;
  if (!replace && !version) {
    std::fprintf(stderr, "usage: model_surgery replace OLD NEW | version N  < model.txt\n");
    return 2;
  }
  const std::string from = replace ? unescape(argv[2]) : "x", to = replace ? unescape(argv[3]) : "x";
  if (from.size() != to.size() || from.empty()) {
    std::fprintf(stderr, "model_surgery: OLD and NEW must have the same, non-zero length\n");
    return 2;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  try {
    const uint64_t size = recsys::model_text_decoded_size(text.data(), text.size());
    std::vector<uint8_t> bytes(size);
    recsys::model_from_text(text.data(), text.size(), bytes.data(), size);
    if (version) {
      const uint16_t v = static_cast<uint16_t>(std::stoi(argv[2]));
      std::memcpy(bytes.data() + offsetof(recsys::ModelHeader, version), &v, sizeof v);
    } else {
      auto at = std::search(bytes.begin() + sizeof(recsys::ModelHeader), bytes.end(), from.begin(), from.end());
      if (at == bytes.end()) {
        std::fprintf(stderr, "model_surgery: bytes not found in the model\n");
        return 1;
      }
      std::copy(to.begin(), to.end(), at);
    }
    const uint64_t fp = recsys::compute_fingerprint(bytes.data(), size);
    std::memcpy(bytes.data() + offsetof(recsys::ModelHeader, fingerprint), &fp, 8);
    const uint64_t cs = recsys::compute_checksum(bytes.data(), size);
    const uint32_t lo = static_cast<uint32_t>(cs), hi = static_cast<uint32_t>(cs >> 32);
    std::memcpy(bytes.data() + offsetof(recsys::ModelHeader, checksum_lo), &lo, 4);
    std::memcpy(bytes.data() + offsetof(recsys::ModelHeader, checksum_hi), &hi, 4);
    std::string out(recsys::model_text_size(size), '\0');
    recsys::model_to_text(bytes.data(), size, out.data());
    std::cout << out.c_str() << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_surgery: %s\n", e.what());
    return 1;
  }
  return 0;
}
