// Named recipes. A preset is a set of flag values applied over the defaults; a --config file and
// flags given on the command line override it (defaults < preset < --config < flags).
//   mest-cifar10-resnet32, mest-cifar100-resnet32: the official MEST scripts (mest-reference.md
//     sections 5, 6, 10): ResNet-32 of GraSP (32/64/128), 160 epochs, batch 64, lr 0.1 cosine,
//     momentum 0.9, weight decay 1e-4, MEST+EM&S updating every 5 epochs with decay points at
//     epochs 90 and 120, seed 914
//   fashion-mnist: the same recipe scaled to a short run on 28x28 images: ResNet-32 (16/32/64),
//     30 epochs, weight decay 5e-4, a mask update every epoch (the official 32 updates per run,
//     scaled), same decay points as fractions of training; the defaults of `mest train` equal it
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mest::train {

const std::vector<std::string> & preset_names();
// The preset's flag values (keys = flag names); an input error naming --preset when unknown.
nlohmann::json preset_values(const std::string & name);

}  // namespace mest::train
