// Expands command-line inputs (files and folders) into a sorted list of image
// files: folders are searched recursively for .jpg/.jpeg/.png/.webp/.bmp.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mmfuse {

bool has_image_file_extension(const std::filesystem::path& path);

// Masks are left out of folders (never out of files named explicitly): a file
// whose stem ends in "_mask" / "-mask" (MVTec AD's ground_truth), and a PNG
// that shares its stem with a non-PNG image in the same folder (the
// magnetic-tile layout: photo.jpg next to its mask photo.png).
// A missing input is ErrorKind::not_found; no image at all is bad_input naming `what`.
std::vector<std::filesystem::path> collect_image_files(const std::vector<std::string>& inputs,
                                                       const std::string& what);

}  // namespace mmfuse
