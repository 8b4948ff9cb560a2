/** Every device kind the config can name; importing this module registers them all. */
import './backends/memory-kind.js';
