/** Every device kind the config can name; importing this module registers them all. */
import './backends/memory-kind.js';
import './backends/file-kind.js';
import './backends/nbd-kind.js';
import './layers/multipath-kind.js';
import './layers/mirror-kind.js';
import './layers/spread-kind.js';
