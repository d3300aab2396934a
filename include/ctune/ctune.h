/* ctune/ctune.h — umbrella header for libctune. */
#ifndef CTUNE_H
#define CTUNE_H
#include "ctune/status.h"
#include "ctune/dtype.h"
#include "ctune/model.h"
#include "ctune/tokenizer.h"
#include "ctune/generate.h"
#include "ctune/chat.h"
#include "ctune/data.h"
#include "ctune/train.h"
#define CTUNE_VERSION "0.1.0"
#endif
