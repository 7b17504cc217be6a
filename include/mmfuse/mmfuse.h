// mmfuse: a C++ engine for multimodal fusion. This header includes the whole
// public API; link libmmfuse (find_package(mmfuse) / pkg-config mmfuse).
//
//   embedder.h     Embedder: texts and images -> vectors (CLIP, Chinese-CLIP,
//                  BERT), zero-shot image classification
//   speech.h       SpeechModel: speech -> text with word / character times
//                  (wav2vec2-CTC), forced alignment of a known transcript
//   sound.h        SoundModel: sound clips -> anomaly score and decision
//                  (Gaussian on MFCC / log-mel, or the CNN+LSTM classifier)
//   sensor.h       SensorDetector: fit on normal sensor rows, score a stream;
//                  detect_csv for a whole CSV file
//   index.h        search_index: text / image retrieval in an index folder
//   generator.h    Generator: prompt (+ images) -> text (LLaVA-1.5, Llama),
//                  chat templates, LoRA adapters
//   thread_pool.h  ThreadPool: the cores a model computes with (0 = all)
//   error.h        Error: the one exception type, with its ErrorKind
//
// Every model computes on its own ThreadPool or one it is handed, so any
// number of models may be called from any number of threads at once, and
// results never depend on who else is computing. Each call documents the
// mmfuse::Error kinds it throws; messages name the file, field or value at
// fault.
#pragma once

#include "mmfuse/embedder.h"
#include "mmfuse/error.h"
#include "mmfuse/export.h"
#include "mmfuse/generator.h"
#include "mmfuse/index.h"
#include "mmfuse/sensor.h"
#include "mmfuse/sound.h"
#include "mmfuse/speech.h"
#include "mmfuse/thread_pool.h"
