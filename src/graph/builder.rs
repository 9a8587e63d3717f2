use super::*;
use crate::error::{Error, Result};

/// Builds a [`Graph`] one validated node at a time.
///
/// Methods return the new value's id directly so that model code reads like the
/// paper; the first error is kept (later calls become no-ops) and returned by
/// [`finish`](GraphBuilder::finish).
///
/// ```
/// use incept::graph::{GraphBuilder, Dims, ConvSpec, PoolGeometry};
/// let mut b = GraphBuilder::new("tiny", Dims::new(3, 32, 32));
/// let x = b.input();
/// let a = b.conv(x, "a", ConvSpec::new(16, 1));
/// let c = b.conv(x, "c", ConvSpec::new(16, 3).pad(1));
/// let y = b.concat(&[a, c]);
/// let y = b.max_pool(y, PoolGeometry::new(3, 2, 0, true));
/// let g = b.finish(y).unwrap();
/// assert_eq!(g.dims(g.output), Dims::new(32, 16, 16));
/// ```
pub struct GraphBuilder {
    graph: Graph,
    error: Option<Error>,
}

/// A convolution's attributes, built fluently: `ConvSpec::new(64, 3).stride(2).pad(1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    /// Output channels.
    pub out_channels: usize,
    /// Window, stride and padding.
    pub geom: ConvGeometry,
    /// Whether the convolution has a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// `k x k`, stride 1, no padding, no bias.
    pub const fn new(out_channels: usize, k: usize) -> Self {
        ConvSpec { out_channels, geom: ConvGeometry::new(k, k, 1, Padding::uniform(0)), bias: false }
    }

    /// `kh x kw`, stride 1, no padding, no bias.
    pub const fn rect(out_channels: usize, kh: usize, kw: usize) -> Self {
        ConvSpec {
            out_channels,
            geom: ConvGeometry { kh, kw, stride_h: 1, stride_w: 1, pad: Padding::uniform(0) },
            bias: false,
        }
    }

    /// The same stride in both directions.
    pub const fn stride(mut self, s: usize) -> Self {
        self.geom.stride_h = s;
        self.geom.stride_w = s;
        self
    }

    /// The same padding on every side.
    pub const fn pad(mut self, p: usize) -> Self {
        self.geom.pad = Padding::uniform(p);
        self
    }

    /// `ph` rows above and below, `pw` columns on each side.
    pub const fn pad_hw(mut self, ph: usize, pw: usize) -> Self {
        self.geom.pad = Padding::symmetric(ph, pw);
        self
    }

    /// Any padding, asymmetric included.
    pub const fn padding(mut self, pad: Padding) -> Self {
        self.geom.pad = pad;
        self
    }

    /// With a bias.
    pub const fn bias(mut self) -> Self {
        self.bias = true;
        self
    }
}

impl GraphBuilder {
    /// A graph named `name` whose input images have shape `input`.
    pub fn new(name: &str, input: Dims) -> Self {
        let mut error = None;
        if !fits(&[input.c, input.h, input.w]) {
            error = Some(Error::Graph(format!("input shape {input:?} is larger than {MAX_ELEMENTS} values")));
        } else if input.volume() == 0 {
            error = Some(Error::Graph(format!("input shape {input:?} has a zero dimension")));
        }
        let graph = Graph {
            name: name.to_string(),
            values: vec![Value { name: "input".into(), dims: input, flat: false }],
            nodes: Vec::new(),
            params: Vec::new(),
            input: ValueId(0),
            output: ValueId(0),
            ignored_prefixes: Vec::new(),
            input_layout: InputLayout::Nchw,
        };
        GraphBuilder { graph, error }
    }

    /// The graph input.
    pub fn input(&self) -> ValueId {
        self.graph.input
    }

    /// The shape of a value built so far.
    pub fn dims(&self, v: ValueId) -> Dims {
        self.graph.values.get(v.0).map_or(Dims::new(0, 0, 0), |x| x.dims)
    }

    /// Declares the order of the input's values (NCHW unless set).
    pub fn set_input_layout(&mut self, layout: InputLayout) {
        self.graph.input_layout = layout;
    }

    /// Declares that parameters whose names start with `prefix` belong to training
    /// only (auxiliary heads): loaders accept and ignore them.
    pub fn ignore_params(&mut self, prefix: &str) {
        self.graph.ignored_prefixes.push(prefix.to_string());
    }

    fn fail(&mut self, node: &str, msg: String) -> ValueId {
        if self.error.is_none() {
            self.error = Some(Error::Graph(format!("{node}: {msg}")));
        }
        self.graph.input
    }

    fn check_inputs(&mut self, node: &str, inputs: &[ValueId]) -> bool {
        if self.error.is_some() {
            return false;
        }
        if let Some(v) = inputs.iter().find(|v| v.0 >= self.graph.values.len()) {
            self.fail(node, format!("unknown input value {}", v.0));
            return false;
        }
        true
    }

    fn param(&mut self, node: &str, suffix: &str, shape: Vec<usize>, kind: ParamKind) -> ParamId {
        let name = if node.is_empty() { suffix.to_string() } else { format!("{node}.{suffix}") };
        if !fits(&shape) {
            self.fail(node, format!("parameter {name} of shape {shape:?} is larger than {MAX_ELEMENTS} values"));
        }
        if self.graph.param_by_name(&name).is_some() {
            self.fail(node, format!("parameter {name} declared twice"));
        }
        self.graph.params.push(Param { name, shape, kind });
        ParamId(self.graph.params.len() - 1)
    }

    fn push(&mut self, name: &str, op: Op, inputs: &[ValueId], dims: Dims, flat: bool) -> ValueId {
        if !fits(&[dims.c, dims.h, dims.w]) {
            return self.fail(name, format!("output shape {dims:?} is larger than {MAX_ELEMENTS} values"));
        }
        let name =
            if name.is_empty() { format!("{}_{}", op.kind_name(), self.graph.nodes.len()) } else { name.to_string() };
        self.graph.values.push(Value { name: name.clone(), dims, flat });
        let output = ValueId(self.graph.values.len() - 1);
        self.graph.nodes.push(Node { name, op, inputs: inputs.to_vec(), output });
        output
    }

    /// Convolution with parameters `{name}.weight` and, with a bias, `{name}.bias`.
    pub fn conv(&mut self, x: ValueId, name: &str, spec: ConvSpec) -> ValueId {
        if !self.check_inputs(name, &[x]) {
            return x;
        }
        let d = self.dims(x);
        let g = spec.geom;
        if spec.out_channels == 0 {
            return self.fail(name, "zero output channels".into());
        }
        let Some((oh, ow)) = g.output_hw(d.h, d.w) else {
            return self.fail(
                name,
                format!(
                    "{}x{} window (stride {}x{}, padding {:?}) does not fit a {}x{} input",
                    g.kh, g.kw, g.stride_h, g.stride_w, g.pad, d.h, d.w
                ),
            );
        };
        let weight = self.param(name, "weight", vec![spec.out_channels, d.c, g.kh, g.kw], ParamKind::Weight);
        let bias = spec.bias.then(|| self.param(name, "bias", vec![spec.out_channels], ParamKind::Bias));
        self.push(name, Op::Conv { weight, bias, geom: g }, &[x], Dims::new(spec.out_channels, oh, ow), false)
    }

    /// BatchNorm with parameters `{name}.weight`, `.bias`, `.running_mean`, `.running_var`.
    pub fn batch_norm(&mut self, x: ValueId, name: &str, eps: f32) -> ValueId {
        if !self.check_inputs(name, &[x]) {
            return x;
        }
        if !(eps > 0.0 && eps.is_finite()) {
            return self.fail(name, format!("epsilon {eps} must be positive"));
        }
        let d = self.dims(x);
        let gamma = self.param(name, "weight", vec![d.c], ParamKind::BnGamma);
        let beta = self.param(name, "bias", vec![d.c], ParamKind::BnBeta);
        let mean = self.param(name, "running_mean", vec![d.c], ParamKind::BnMean);
        let var = self.param(name, "running_var", vec![d.c], ParamKind::BnVar);
        let flat = self.graph.values[x.0].flat;
        self.push(name, Op::BatchNorm { gamma, beta, mean, var, eps }, &[x], d, flat)
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, x: ValueId) -> ValueId {
        if !self.check_inputs("relu", &[x]) {
            return x;
        }
        let (d, flat) = (self.dims(x), self.graph.values[x.0].flat);
        self.push("", Op::Relu, &[x], d, flat)
    }

    fn pool_dims(&mut self, x: ValueId, g: &PoolGeometry, what: &str) -> Option<Dims> {
        if !self.check_inputs(what, &[x]) {
            return None;
        }
        let d = self.dims(x);
        let w = &g.window;
        if w.pad.top >= w.kh || w.pad.bottom >= w.kh || w.pad.left >= w.kw || w.pad.right >= w.kw {
            self.fail(what, format!("padding {:?} must be smaller than the {}x{} window", w.pad, w.kh, w.kw));
            return None;
        }
        match g.output_hw(d.h, d.w) {
            Some((oh, ow)) => Some(Dims::new(d.c, oh, ow)),
            None => {
                self.fail(what, format!("{}x{} window does not fit a {}x{} input", w.kh, w.kw, d.h, d.w));
                None
            }
        }
    }

    /// Max pooling.
    pub fn max_pool(&mut self, x: ValueId, geom: PoolGeometry) -> ValueId {
        match self.pool_dims(x, &geom, "max_pool") {
            Some(d) => self.push("", Op::MaxPool(geom), &[x], d, false),
            None => x,
        }
    }

    /// Average pooling; `count_include_pad` picks the divisor convention.
    pub fn avg_pool(&mut self, x: ValueId, geom: PoolGeometry, count_include_pad: bool) -> ValueId {
        match self.pool_dims(x, &geom, "avg_pool") {
            Some(d) => self.push("", Op::AvgPool { geom, count_include_pad, pad_with_bias: false }, &[x], d, false),
            None => x,
        }
    }

    /// Average pooling counting the padding in the divisor, the padding taking the
    /// value `x`'s producer (a convolution and BatchNorms after it) gives an all-zero
    /// input (see [`Op::AvgPool`]); checked when the graph is finished.
    pub fn avg_pool_padded_with_bias(&mut self, x: ValueId, geom: PoolGeometry) -> ValueId {
        match self.pool_dims(x, &geom, "avg_pool") {
            Some(d) => {
                let op = Op::AvgPool { geom, count_include_pad: true, pad_with_bias: true };
                self.push("", op, &[x], d, false)
            }
            None => x,
        }
    }

    /// Global average pooling to `C x 1 x 1`, flattened to `[N, C]`.
    pub fn global_avg_pool(&mut self, x: ValueId) -> ValueId {
        if !self.check_inputs("global_avg_pool", &[x]) {
            return x;
        }
        let d = self.dims(x);
        self.push("", Op::GlobalAvgPool, &[x], Dims::new(d.c, 1, 1), true)
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, inputs: &[ValueId]) -> ValueId {
        if !self.check_inputs("concat", inputs) {
            return self.graph.input;
        }
        let Some(&first) = inputs.first() else {
            return self.fail("concat", "no inputs".into());
        };
        let d0 = self.dims(first);
        let mut c: usize = 0;
        for &v in inputs {
            let d = self.dims(v);
            if (d.h, d.w) != (d0.h, d0.w) {
                return self.fail(
                    "concat",
                    format!("input '{}' is {}x{}, others are {}x{}", self.graph.values[v.0].name, d.h, d.w, d0.h, d0.w),
                );
            }
            c = c.saturating_add(d.c);
        }
        self.push("", Op::Concat, inputs, Dims::new(c, d0.h, d0.w), false)
    }

    /// `act(x + scale * y)`.
    pub fn residual_add(&mut self, x: ValueId, y: ValueId, scale: f32, act: Activation) -> ValueId {
        if !self.check_inputs("residual_add", &[x, y]) {
            return x;
        }
        let (dx, dy) = (self.dims(x), self.dims(y));
        if dx != dy {
            return self.fail("residual_add", format!("shortcut is {dx:?} but the branch is {dy:?}"));
        }
        if !scale.is_finite() {
            return self.fail("residual_add", format!("scale {scale} is not finite"));
        }
        self.push("", Op::ResidualAdd { scale, act }, &[x, y], dx, false)
    }

    /// Local response normalisation across `size` channels.
    pub fn lrn(&mut self, x: ValueId, size: usize, alpha: f32, beta: f32, k: f32) -> ValueId {
        if !self.check_inputs("lrn", &[x]) {
            return x;
        }
        if size == 0 || k.is_nan() || k <= 0.0 || !alpha.is_finite() || !beta.is_finite() {
            return self.fail("lrn", format!("bad parameters size {size}, alpha {alpha}, beta {beta}, k {k}"));
        }
        let d = self.dims(x);
        self.push("", Op::Lrn { size, alpha, beta, k }, &[x], d, false)
    }

    /// Fully connected layer on the flattened input, parameters `{name}.weight`
    /// `[out, in]` and, with a bias, `{name}.bias`.
    pub fn linear(&mut self, x: ValueId, name: &str, out: usize, bias: bool) -> ValueId {
        if !self.check_inputs(name, &[x]) {
            return x;
        }
        if out == 0 {
            return self.fail(name, "zero output features".into());
        }
        let k = self.dims(x).volume();
        let weight = self.param(name, "weight", vec![out, k], ParamKind::Weight);
        let bias = bias.then(|| self.param(name, "bias", vec![out], ParamKind::Bias));
        self.push(name, Op::Linear { weight, bias }, &[x], Dims::new(out, 1, 1), true)
    }

    /// Softmax over channels.
    pub fn softmax(&mut self, x: ValueId) -> ValueId {
        if !self.check_inputs("softmax", &[x]) {
            return x;
        }
        let (d, flat) = (self.dims(x), self.graph.values[x.0].flat);
        self.push("", Op::Softmax, &[x], d, flat)
    }

    /// An elementwise activation.
    pub fn pointwise(&mut self, x: ValueId, f: Pointwise) -> ValueId {
        if !self.check_inputs("pointwise", &[x]) {
            return x;
        }
        let ok = match f {
            // min > max is allowed: every value becomes max, as in ONNX and numpy.
            Pointwise::Clip { min, max } => !min.is_nan() && !max.is_nan(),
            Pointwise::Sigmoid => true,
            Pointwise::LeakyRelu { alpha } => alpha.is_finite(),
        };
        if !ok {
            return self.fail("pointwise", format!("bad parameters {f:?}"));
        }
        let (d, flat) = (self.dims(x), self.graph.values[x.0].flat);
        self.push("", Op::Pointwise(f), &[x], d, flat)
    }

    /// Finishes the graph with `output` as its result. Nodes the output does not
    /// depend on are dropped, with the parameters only they used.
    pub fn finish(mut self, output: ValueId) -> Result<Graph> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if output.0 >= self.graph.values.len() {
            return Err(Error::Graph(format!("output value {} does not exist", output.0)));
        }
        if output == self.graph.input {
            return Err(Error::Graph("the output is the input: the graph has no operators".into()));
        }
        self.graph.output = output;
        prune(&mut self.graph);
        check_pools_padded_with_bias(&self.graph)?;
        Ok(self.graph)
    }
}

/// Every average pool padded with its input's bias reads a convolution and the
/// BatchNorms after it, each value between them read only by the next.
fn check_pools_padded_with_bias(g: &Graph) -> Result<()> {
    for n in &g.nodes {
        if let Op::AvgPool { count_include_pad, pad_with_bias: true, .. } = n.op
            && (!count_include_pad || g.projection_of(n.inputs[0]).is_none())
        {
            return Err(Error::Graph(format!(
                "{}: an average pool padded with its input's bias must count the padding and read a \
                 convolution (and BatchNorms after it) whose values nothing else reads",
                n.name
            )));
        }
    }
    Ok(())
}

/// The most values one tensor (an activation or a parameter) may hold: far beyond any
/// real network, and small enough that no size computed from shapes can overflow.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Whether a tensor of `shape` holds at most [`MAX_ELEMENTS`] values.
fn fits(shape: &[usize]) -> bool {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_some_and(|n| n <= MAX_ELEMENTS)
}

/// Removes nodes the output does not depend on, and their parameters.
fn prune(g: &mut Graph) {
    let mut live = vec![false; g.values.len()];
    live[g.output.0] = true;
    let mut keep = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate().rev() {
        if live[n.output.0] {
            keep[i] = true;
            for v in &n.inputs {
                live[v.0] = true;
            }
        }
    }
    if keep.iter().all(|&k| k) {
        return;
    }
    let mut it = keep.iter();
    g.nodes.retain(|_| *it.next().unwrap());
    // Renumber parameters still in use.
    let mut used = vec![None; g.params.len()];
    let mut params = Vec::new();
    let mut remap = |p: &mut ParamId| {
        let new = *used[p.0].get_or_insert_with(|| {
            params.push(g.params[p.0].clone());
            params.len() - 1
        });
        *p = ParamId(new);
    };
    for n in &mut g.nodes {
        match &mut n.op {
            Op::Conv { weight, bias, .. } | Op::Linear { weight, bias } => {
                remap(weight);
                if let Some(b) = bias {
                    remap(b);
                }
            }
            Op::BatchNorm { gamma, beta, mean, var, .. } => {
                for p in [gamma, beta, mean, var] {
                    remap(p);
                }
            }
            _ => {}
        }
    }
    g.params = params;
}
