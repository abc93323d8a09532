// Reading host files the loaders need, with errors that name the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vmrun {

/** Reads a whole regular file (bounded by max_size) or throws NotFound/Usage naming it. */
std::vector<uint8_t> read_file(const std::string& path, const char* what, uint64_t max_size);

}  // namespace vmrun
