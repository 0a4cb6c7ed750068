//! Adam as MATLAB's `trainingOptions('adam', ...)` runs it: L2 regularisation is added to the gradient of
//! the weights (not the biases, MATLAB's BiasL2Factor 0) before the moment estimates. That is Adam with
//! L2, not AdamW's decoupled decay, which is why candle-nn's AdamW is not used.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{backprop::GradStore, DType, Tensor, Var};
use candle_nn::VarMap;

#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub l2: f64,
}

impl AdamConfig {
    /// MATLAB's defaults for the moment decays and epsilon.
    pub fn matlab(learning_rate: f64, l2: f64) -> Self {
        AdamConfig {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            l2,
        }
    }
}

struct Slot {
    name: String,
    var: Var,
    first_moment: Tensor,
    second_moment: Tensor,
    regularised: bool,
}

pub struct Adam {
    config: AdamConfig,
    slots: Vec<Slot>,
    step: usize,
}

impl Adam {
    /// Optimises every variable of `varmap` (sorted by name, so state files are stable).
    pub fn new(varmap: &VarMap, config: AdamConfig) -> Result<Adam> {
        let data = varmap.data().lock().expect("varmap lock");
        let mut named: Vec<(String, Var)> =
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = named
            .into_iter()
            .map(|(name, var)| {
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Slot {
                    regularised: name.ends_with("weight"),
                    first_moment: zeros.clone(),
                    second_moment: zeros,
                    name,
                    var,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Adam {
            config,
            slots,
            step: 0,
        })
    }

    pub fn steps_taken(&self) -> usize {
        self.step
    }

    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.learning_rate = learning_rate;
    }

    /// One update from the gradients of the last backward pass. Variables without a gradient (not used
    /// by the loss) are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let step_size = c.learning_rate / (1.0 - c.beta1.powi(t));
        let second_correction = 1.0 - c.beta2.powi(t);
        for slot in &mut self.slots {
            let Some(grad) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            // Everything stored across steps must be detached from the variable: a moment computed
            // from the tracked `Var` would hold this step's graph, and through the previous moment
            // every earlier step's too (memory grew by tens of MB a step).
            let w = slot.var.as_tensor().detach();
            let grad = grad.detach();
            let grad = if slot.regularised && c.l2 > 0.0 {
                (grad + (&w * c.l2)?)?
            } else {
                grad
            };
            slot.first_moment = ((&slot.first_moment * c.beta1)? + (&grad * (1.0 - c.beta1))?)?;
            slot.second_moment =
                ((&slot.second_moment * c.beta2)? + (grad.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((&slot.second_moment / second_correction)?.sqrt()? + c.epsilon)?;
            let update = ((&slot.first_moment / denom)? * step_size)?;
            slot.var.set(&(w - update)?)?;
        }
        Ok(())
    }

    /// The moments and step count, to be saved beside a checkpoint so `--resume` continues exactly.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut state = HashMap::new();
        for slot in &self.slots {
            state.insert(format!("m.{}", slot.name), slot.first_moment.clone());
            state.insert(format!("v.{}", slot.name), slot.second_moment.clone());
        }
        let device = self
            .slots
            .first()
            .map(|s| s.var.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        state.insert("step".into(), Tensor::new(&[self.step as u32], &device)?);
        Ok(state)
    }

    /// Restores what [`Adam::state`] saved; a missing or mis-shaped entry is an error naming it.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for slot in &mut self.slots {
            let dims = slot.var.dims().to_vec();
            let get = |key: String| -> Result<Tensor> {
                let t = state
                    .get(&key)
                    .with_context(|| format!("optimizer state has no `{key}`"))?;
                anyhow::ensure!(
                    t.dims() == dims,
                    "optimizer state `{key}` has shape {:?}, expected {dims:?}",
                    t.dims()
                );
                Ok(t.to_dtype(DType::F32)?.to_device(slot.var.device())?)
            };
            slot.first_moment = get(format!("m.{}", slot.name))?.detach();
            slot.second_moment = get(format!("v.{}", slot.name))?.detach();
        }
        let step = state.get("step").context("optimizer state has no `step`")?;
        self.step = step.to_vec1::<u32>()?[0] as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Adam's first step moves every parameter by lr against the sign of its gradient.
    #[test]
    fn first_step_moves_by_learning_rate_and_l2_spares_biases() {
        let varmap = VarMap::new();
        let dev = Device::Cpu;
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let w = vb
            .get_with_hints(2, "layer.weight", candle_nn::Init::Const(1.0))
            .unwrap();
        let b = vb
            .get_with_hints(2, "layer.bias", candle_nn::Init::Const(1.0))
            .unwrap();
        let mut adam = Adam::new(&varmap, AdamConfig::matlab(0.1, 0.0)).unwrap();
        // loss = sum(w * [1, -1]) + sum(b * [2, -3])
        let loss = ((w
            .mul(&Tensor::new(&[1f32, -1.], &dev).unwrap())
            .unwrap()
            .sum_all()
            .unwrap())
            + (b.mul(&Tensor::new(&[2f32, -3.], &dev).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()))
        .unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        let data = varmap.data().lock().unwrap();
        let w_after = data["layer.weight"].as_tensor().to_vec1::<f32>().unwrap();
        let b_after = data["layer.bias"].as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (w_after[0] - 0.9).abs() < 1e-5 && (w_after[1] - 1.1).abs() < 1e-5,
            "{w_after:?}"
        );
        assert!(
            (b_after[0] - 0.9).abs() < 1e-5 && (b_after[1] - 1.1).abs() < 1e-5,
            "{b_after:?}"
        );
        drop(data);
        assert_eq!(adam.steps_taken(), 1);
        let state = adam.state().unwrap();
        let mut again = Adam::new(&varmap, AdamConfig::matlab(0.1, 0.0)).unwrap();
        again.load_state(&state).unwrap();
        assert_eq!(again.steps_taken(), 1);
    }

    #[test]
    fn l2_pulls_weights_not_biases() {
        let varmap = VarMap::new();
        let dev = Device::Cpu;
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let w = vb
            .get_with_hints(1, "weight", candle_nn::Init::Const(2.0))
            .unwrap();
        let b = vb
            .get_with_hints(1, "bias", candle_nn::Init::Const(2.0))
            .unwrap();
        let mut adam = Adam::new(&varmap, AdamConfig::matlab(0.1, 1.0)).unwrap();
        // Zero data gradient: only L2 acts, so the weight shrinks and the bias stays. (A tensor
        // product, not `* 0.0`: candle's backward skips an affine map with factor 0 altogether.)
        let zero = Tensor::new(&[0f32], &dev).unwrap();
        let loss = (w.mul(&zero).unwrap() + b.mul(&zero).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        let data = varmap.data().lock().unwrap();
        assert!((data["weight"].as_tensor().to_vec1::<f32>().unwrap()[0] - 1.9).abs() < 1e-5);
        assert_eq!(data["bias"].as_tensor().to_vec1::<f32>().unwrap()[0], 2.0);
    }

    /// The moments kept across steps must not hold the graph of the step that made them: with L2
    /// they were computed from the tracked variable, so each step's graph (activations included)
    /// stayed alive through the next step's moments, and memory grew every step until the process
    /// was killed.
    #[test]
    fn stored_state_holds_no_graph_of_past_steps() {
        let varmap = VarMap::new();
        let dev = Device::Cpu;
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let w = vb
            .get_with_hints(3, "layer.weight", candle_nn::Init::Const(0.5))
            .unwrap();
        let b = vb
            .get_with_hints(3, "layer.bias", candle_nn::Init::Const(0.5))
            .unwrap();
        let mut adam = Adam::new(&varmap, AdamConfig::matlab(0.01, 1e-3)).unwrap();
        let x = Tensor::new(&[1f32, -2., 3.], &dev).unwrap();
        for _ in 0..5 {
            let loss = (w.mul(&x).unwrap() + &b)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            adam.step(&loss.backward().unwrap()).unwrap();
        }
        for (name, tensor) in adam.state().unwrap() {
            assert!(
                !tensor.track_op(),
                "optimizer state `{name}` still carries a computation graph"
            );
            let grads = tensor.sum_all().unwrap().backward().unwrap();
            assert!(
                grads.get(&w).is_none() && grads.get(&b).is_none(),
                "optimizer state `{name}` reaches back to the model's variables"
            );
        }
    }
}
