// An ordered chain of modules; backward runs them in reverse.
#pragma once
#include "nn/module.h"

namespace mest::nn {

template <typename T>
class Sequential : public Module<T> {
public:
    explicit Sequential(std::string name) : Module<T>(std::move(name)) {}

    template <typename M, typename... Args>
    M & add(Args &&... args) {
        auto module = std::make_unique<M>(std::forward<Args>(args)...);
        M & ref = *module;
        modules_.push_back(std::move(module));
        return ref;
    }
    // A module built elsewhere (e.g. by a layer factory that chooses dense or sparse).
    Module<T> & append(ModulePtr<T> module) {
        modules_.push_back(std::move(module));
        return *modules_.back();
    }

    Tensor<T> forward(const Tensor<T> & x, bool training) override {
        Tensor<T> h = x;
        for (auto & m : modules_) h = m->forward(h, training);
        return h;
    }
    Tensor<T> backward(const Tensor<T> & dy) override {
        Tensor<T> g = dy;
        for (auto it = modules_.rbegin(); it != modules_.rend(); ++it) g = (*it)->backward(g);
        return g;
    }
    void collect_parameters(std::vector<Parameter<T> *> & out) override {
        for (auto & m : modules_) m->collect_parameters(out);
    }
    void collect_state(std::vector<StateTensor<T>> & out) override {
        for (auto & m : modules_) m->collect_state(out);
    }
    void initialize(Rng & rng) override {
        for (auto & m : modules_) m->initialize(rng);
    }
    void release_saved() override {
        for (auto & m : modules_) m->release_saved();
    }
    void set_input_grad_required(bool required) override {
        this->input_grad_required_ = required;
        if (!modules_.empty()) modules_.front()->set_input_grad_required(required);
    }
    Shape output_shape(const Shape & input) const override {
        Shape s = input;
        for (auto & m : modules_) s = m->output_shape(s);
        return s;
    }
    const std::vector<ModulePtr<T>> & modules() const { return modules_; }

private:
    std::vector<ModulePtr<T>> modules_;
};

}  // namespace mest::nn
