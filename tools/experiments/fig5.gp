# Figure 5: train (left) and test (right) MSE per iteration of the deep ReLU
# (top) and sigmoid (bottom) networks. Called by fig5.sh, which passes
#   dir      folder of <method>_<activation>.csv (columns k,mse_train,mse_test)
#   out      PNG to write
#   depth    network depth, for the title
#   m_relu, m_sigmoid   methods with a curve, space separated
#   n_relu, n_sigmoid   notes for the methods without one (may be empty)
set terminal pngcairo size 1400,1000 font ",11"
set output out
set datafile separator ","
set logscale y
set format y "10^{%L}"
set yrange [1e-3:*]
set xlabel "iteration"
set ylabel "MSE (normalised)"
set grid
set key top right font ",9"
color(m) = m eq "sgd" ? "#1f77b4" : m eq "sgdm" ? "#ff7f0e" : m eq "adam" ? "#2ca02c" : \
           m[1:2] eq "2s" ? "#d62728" : "#9467bd"
dash(m) = strstrt(m, "default") > 0 ? 2 : 1
label(m) = m eq "sgd" ? "SGD" : m eq "sgdm" ? "SGDM" : m eq "adam" ? "Adam" : \
           m eq "2s" ? "2S-RADMM" : m eq "3s" ? "3S-RADMM" : m eq "2s-default" ? "2S-RADMM (radmm default)" : \
           "3S-RADMM (radmm default)"
file(m, a) = sprintf("%s/%s_%s.csv", dir, m, a)
set multiplot layout 2,2 title sprintf("Wine Quality (red), %s-layer residual networks", depth)
do for [a in "relu sigmoid"] {
  ms = a eq "relu" ? m_relu : m_sigmoid
  note = a eq "relu" ? n_relu : n_sigmoid
  do for [col = 2:3] {
    set title sprintf("%s, %s MSE", a eq "relu" ? "ReLU" : "sigmoid", col == 2 ? "train" : "test")
    if (strlen(note) > 0) { set label 1 note at graph 0.02, 0.04 font ",9" } else { unset label 1 }
    plot for [i = 1:words(ms)] file(word(ms, i), a) using 1:col every ::1 with lines lw 2 \
      dt dash(word(ms, i)) lc rgb color(word(ms, i)) title label(word(ms, i))
  }
}
unset multiplot
