// radmm: the coordinator binary (see coordinator/cli.cpp).
#include "coordinator/cli.hpp"

int main(int argc, char** argv) { return radmm::coordinator::run_cli(argc, argv); }
